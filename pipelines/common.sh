# Shared by the launch-line scripts in this directory (sourced, bash).
#
# Every part of a pipeline can be replaced from the environment, which is how
# tests run them headless on a test clip:
#   DFD_SRC      the source, up to decoded raw video (e.g. "filesrc location=a.mp4 ! decodebin")
#   DFD_SINK     the display sink (default: autovideosink)
#   DFD_MODEL    model checkpoint, .pt or .safetensors (unset: an untrained demo model, with a warning)
#   DFD_OPTS     more deepfakedetect properties, e.g. "window-size=10 detect-interval=3"
#   DFD_LOG      where verdict messages go (scripts that log them): a file, or - for stdout
#   GST_LAUNCH   the gst-launch-1.0 program
# Words are split on spaces: paths with spaces need quoting inside the variable
# the way gst-launch-1.0 expects it (location=\"my file.mp4\").
set -o pipefail

GST_LAUNCH=${GST_LAUNCH:-gst-launch-1.0}

# deepfakedetect with the model and options from the environment, plus "$@".
dfd_element() {
  echo "deepfakedetect ${DFD_MODEL:+model=$DFD_MODEL} $* ${DFD_OPTS:-}"
}

# The deepfakedetect messages of `gst-launch-1.0 -m`, one per line:
#   2026-01-01T12:00:00+00:00 deepfakedetect, timestamp=(guint64)..., track-id=..., fake-probability=..., label=...
dfd_filter_verdicts() {
  sed -un 's/^Got message #[0-9]* from element "[^"]*" (element): \(deepfakedetect.*\)$/\1/p' |
    while IFS= read -r line; do printf '%s %s\n' "$(date -Iseconds)" "$line"; done
}

# Runs the pipeline given as words; with DFD_LOG set, its verdicts are logged
# there. Exit status: gst-launch-1.0's (0 after a clean EOS).
dfd_run() {
  if [ -n "${DFD_LOG:-}" ]; then
    if [ "$DFD_LOG" = "-" ]; then
      $GST_LAUNCH -e -m "$@" | dfd_filter_verdicts
    else
      $GST_LAUNCH -e -m "$@" | dfd_filter_verdicts >>"$DFD_LOG"
    fi
  else
    $GST_LAUNCH -e "$@"
  fi
}

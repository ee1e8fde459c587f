#!/usr/bin/env bash
# deepfake-model on MesoNet's Keras files: info on the .h5, import to our
# safetensors with a filled card, info on the result, and bad .h5 files
# (exit 1, one line on stderr).
set -u
TOOL=$1 MODELS=$2 REF=$3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() {  # description, condition
  if eval "$2"; then echo "ok   - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi
}
one_line_error() {  # args...: must exit 1 with exactly one stderr line naming the problem
  "$TOOL" "$@" >"$T/out" 2>"$T/err"
  local code=$?
  [ "$code" -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^deepfake-model: error: " "$T/err"
}

"$TOOL" info "$MODELS/Meso4_DF.h5" >"$T/h5.info"
check "info on the .h5 names the format" "grep -q '^format: *keras-h5' $T/h5.info"
check "info on the .h5 names the architecture" "grep -q '^architecture: *meso4$' $T/h5.info"
check "info on the .h5 counts the paper's 27,977 parameters" "grep -q '^parameters: *27977$' $T/h5.info"
check "info on the .h5 shows the card's licence" "grep -q '\"licence\": \"Apache-2.0\"' $T/h5.info"
check "a trained model has no UNTRAINED warning" "! grep -q UNTRAINED $T/h5.info"

"$TOOL" import "$MODELS/Meso4_DF.h5" --out "$T/meso4_df.safetensors" >"$T/import.out"
check "import writes a model" "[ -s $T/meso4_df.safetensors ]"
check "import says what it wrote" "grep -q 'meso4, 28 tensors' $T/import.out"
"$TOOL" info --json "$T/meso4_df.safetensors" >"$T/imp.json"
check "imported file is safetensors" "grep -q '\"format\": \"safetensors\"' $T/imp.json"
check "card: architecture" "grep -q '\"architecture\": \"meso4\"' $T/imp.json"
check "card: input 256 RGB / 255" "grep -q '\"input_size\": 256' $T/imp.json && grep -q '\"channel_order\": \"RGB\"' $T/imp.json"
check "card: labels, class 1 real" "tr -d ' \n' <$T/imp.json | grep -q '\"class_names\":\\[\"FAKE\",\"REAL\"\\]'"
check "card: trained" "grep -q '\"trained\": true' $T/imp.json"
check "card: threshold 0.5" "grep -q '\"threshold\": 0.5' $T/imp.json"
check "card: licence" "grep -q '\"licence\": \"Apache-2.0\"' $T/imp.json"
check "card: provenance (authors' repo, paper, import)" "grep -q 'github.com/DariusAf/MesoNet.*WIFS 2018.*imported by deepfake-model' $T/imp.json"
check "card: training data" "grep -q '\"training_data\": \"the MesoNet authors.* Deepfake face set' $T/imp.json"
check "import keeps the weights (same checksum as the .h5)" \
  "[ \"\$($TOOL info $MODELS/Meso4_DF.h5 | grep checksum)\" = \"\$($TOOL info $T/meso4_df.safetensors | grep checksum)\" ]"
"$TOOL" import "$MODELS/MesoInception_F2F.h5" --out "$T/inc.safetensors" --name mine --licence MIT >/dev/null
"$TOOL" info "$T/inc.safetensors" >"$T/inc.info"
check "MesoInception4: architecture and the paper's 28,615 parameters" \
  "grep -q '^architecture: *mesoinception4$' $T/inc.info && grep -q '^parameters: *28615$' $T/inc.info"
check "import options override the card" "grep -q '\"name\": \"mine\"' $T/inc.info && grep -q '\"licence\": \"MIT\"' $T/inc.info"

for bad in truncated not_hdf5 hdf5_garbage layer_names shapes missing_layer dtype huge external_storage external_link filter many_layers not_keras; do
  check "info on meso_bad_$bad.h5" "one_line_error info $REF/meso_bad_$bad.h5"
  check "import of meso_bad_$bad.h5" "one_line_error import $REF/meso_bad_$bad.h5 --out $T/x.safetensors"
done
check "nothing written on a failed import" "[ ! -e $T/x.safetensors ]"
one_line_error info "$REF/meso_bad_shapes.h5"
check "the wrong shape is named" "grep -q \"shape mismatch for 'conv2d_6/kernel'\" $T/err"
one_line_error info "$REF/meso_bad_layer_names.h5"
check "the wrong layer is named" "grep -q \"unexpected layer 'convolution_6'\" $T/err"

echo "$fails failed"
[ "$fails" -eq 0 ]

// A camera for the monitor's tests: gst-rtsp-server serving one H.264
// stream at rtsp://127.0.0.1:PORT/cam, shared between clients, from a
// launch description (default: tests/data/astronaut.png frozen, 320x240,
// 10 fps, x264 zerolatency).
//   rtsp_camera PORT [PICTURE]
// Prints "ready" on stdout once it listens. Stops on SIGTERM/SIGINT.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <cstdio>
#include <string>

static gboolean quit(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_REMOVE;
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: rtsp_camera PORT [PICTURE]\n");
    return 2;
  }
  std::string video = "videotestsrc is-live=true pattern=ball";
  if (argc > 2)
    video = std::string("filesrc location=\"") + argv[2] + "\" ! pngdec ! imagefreeze is-live=true";
  const std::string launch = "( " + video +
                             " ! videoconvert ! videoscale ! videorate ! video/x-raw,width=320,height=240,framerate=10/1"
                             " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10"
                             " ! rtph264pay name=pay0 pt=96 config-interval=1 )";
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  GstRTSPServer* server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, "127.0.0.1");
  gst_rtsp_server_set_service(server, argv[1]);
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  gst_rtsp_media_factory_set_shared(factory, TRUE);
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  gst_rtsp_mount_points_add_factory(mounts, "/cam", factory);
  g_object_unref(mounts);
  if (gst_rtsp_server_attach(server, nullptr) == 0) {
    std::fprintf(stderr, "rtsp_camera: cannot listen on port %s\n", argv[1]);
    return 1;
  }
  g_unix_signal_add(SIGTERM, quit, loop);
  g_unix_signal_add(SIGINT, quit, loop);
  std::printf("ready\n");
  std::fflush(stdout);
  g_main_loop_run(loop);
  g_object_unref(server);
  g_main_loop_unref(loop);
  return 0;
}

// The deepfakedetect plugin: registers every element it carries.
#include "dfd_config.h"
#include "gstdeepfakedetect.h"
#include "publish/gstdeepfakemetapublish.h"

static gboolean plugin_init(GstPlugin* plugin) {
  gboolean ok = GST_ELEMENT_REGISTER(deepfakedetect, plugin);
  ok &= GST_ELEMENT_REGISTER(deepfakemetapublish, plugin);
  return ok;
}

#define PACKAGE "deepfakedetect"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, deepfakedetect,
                  "Finds deepfaked faces in video (ResNeXt50+LSTM and MesoNet, LibTorch)", plugin_init, DFD_VERSION,
                  "LGPL", "deepfakedetect", "https://github.com/deepfakedetect/deepfakedetect")

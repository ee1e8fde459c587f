// method=mqtt through libmosquitto: QoS 1 publishes from a sender thread,
// libmosquitto's loop thread for the network and reconnects (exponential
// back-off up to max_reconnect_interval_s). While the broker is away events
// wait in our bounded queue; at most kMaxInflight are handed to libmosquitto
// unacknowledged, so its own queue stays bounded too.
#pragma once
#include "events/publisher.h"

namespace dfd::events {

std::unique_ptr<Publisher> make_mqtt_publisher(const PublisherConfig& config);

}  // namespace dfd::events

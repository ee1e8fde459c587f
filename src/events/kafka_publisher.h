// method=kafka through librdkafka: produce() copies the event into
// librdkafka's own bounded queue (queue.buffering.max.messages =
// max_buffered) and returns; its threads deliver and reconnect. A full queue,
// a failed delivery and what is still queued at finish() count as dropped,
// from the delivery reports a poll thread reads.
#pragma once
#include "events/publisher.h"

namespace dfd::events {

std::unique_ptr<Publisher> make_kafka_publisher(const PublisherConfig& config);

}  // namespace dfd::events

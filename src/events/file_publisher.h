// method=file: JSON lines (one event a line) or a JSON array closed at end of
// stream, to a file or stdout ("-"). A writer thread does the writing.
#pragma once
#include "events/publisher.h"

namespace dfd::events {

std::unique_ptr<Publisher> make_file_publisher(const PublisherConfig& config);

}  // namespace dfd::events

#pragma once
// A process-wide cancellation request (SIGINT/SIGTERM): long loops that run in ocib's own
// process (packing a layer) poll it and stop with Errc::kCancelled. Sandboxed steps are
// stopped by sandbox::cancel_all(); this covers the work no sandbox holds.

#include <string>

#include "base/error.h"

namespace ocib {

/// Asks every poller to stop; stays set for the rest of the process.
void request_cancel();
/// True once request_cancel() was called. Cheap (one atomic load): poll it per chunk.
bool cancel_requested();
/// Errc::kCancelled ("<what>: cancelled") once cancellation was requested, else ok.
Status check_cancelled(const std::string& what);

}  // namespace ocib

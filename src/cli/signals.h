#pragma once
// SIGINT/SIGTERM handling: the handler only writes to a self-pipe; a watcher thread turns the
// signal into a cancellation of running steps, so an interrupted build unwinds normally
// (staging removed, no half-written cache entries) and exits 130.

namespace ocib::cli {

/// Installs the handlers and starts the watcher. Call once, before work starts.
void install_signal_handlers();
/// True once SIGINT/SIGTERM arrived.
bool interrupted();

}  // namespace ocib::cli

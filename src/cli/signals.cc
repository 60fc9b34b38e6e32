#include "cli/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "sandbox/sandbox.h"

namespace ocib::cli {

namespace {
int g_pipe[2] = {-1, -1};
std::atomic<bool> g_interrupted{false};

void on_signal(int sig) {
  unsigned char c = static_cast<unsigned char>(sig);
  int saved = errno;
  (void)!write(g_pipe[1], &c, 1);
  errno = saved;
}
}  // namespace

void install_signal_handlers() {
  if (pipe2(g_pipe, O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  std::thread([] {
    unsigned char c;
    int count = 0;
    while (read(g_pipe[0], &c, 1) == 1) {
      g_interrupted = true;
      if (++count > 1) _exit(130);  // a second ^C: leave now
      const char msg[] = "ocib: interrupted, cancelling running steps\n";
      (void)!write(2, msg, sizeof msg - 1);
      sandbox::cancel_all();
    }
  }).detach();
}

bool interrupted() { return g_interrupted.load(); }

}  // namespace ocib::cli

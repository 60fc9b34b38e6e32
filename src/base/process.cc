#include "base/process.h"

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"

extern char** environ;

namespace ocib {

Result<int> run_captured(const std::vector<std::string>& args, std::string* output,
                         const std::vector<std::string>& extra_env) {
  if (args.empty()) return Error::invalid("run_captured: empty argv");
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
  UniqueFd rd(p[0]), wr(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<std::string> argv_s = args;
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::from_errno("run " + args[0], rc);
  wr.reset();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output->append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void run_at_idle_priority() {
  sched_param p{};
  p.sched_priority = 0;
  if (::sched_setscheduler(0, SCHED_IDLE, &p) != 0)
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
  // ioprio_set(IOPRIO_WHO_PROCESS, this thread, IOPRIO_CLASS_IDLE): no glibc wrapper.
  constexpr int kWhoProcess = 1, kClassIdle = 3, kClassShift = 13;
  (void)::syscall(SYS_ioprio_set, kWhoProcess, static_cast<int>(::syscall(SYS_gettid)), kClassIdle << kClassShift);
}

void lower_session_priority() {
  errno = 0;
  int nice_value = ::getpriority(PRIO_PROCESS, 0);
  if (errno != 0) nice_value = 0;
  if (::sched_getscheduler(0) == SCHED_IDLE) nice_value = 19;
  if (nice_value <= 0 || nice_value > 19) return;
  int ag = ::open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
  if (ag < 0) return;
  char text[2] = {static_cast<char>('0' + nice_value / 10), static_cast<char>('0' + nice_value % 10)};
  if (nice_value >= 10) (void)!::write(ag, text, 2);
  else (void)!::write(ag, text + 1, 1);
  ::close(ag);
}

}  // namespace ocib

#include "control/ssh_keys.h"

#include <cstring>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "base/fs.h"
#include "base/process.h"
#include "control/control.h"

namespace ocib::control {

Status add_ssh_spec(const std::string& v, Options& o) {
  auto eq = v.find('=');
  std::string id = v.substr(0, eq), paths = eq == std::string::npos ? "" : v.substr(eq + 1);
  if (id.empty()) return Error::invalid("--ssh \"" + v + "\": want default, ID, ID=SOCKET or ID=KEY[,KEY...]");
  if (paths.empty()) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (!sock || !*sock) return Error::invalid("--ssh " + id + ": SSH_AUTH_SOCK is not set (start an agent, or give ID=SOCKET or ID=KEYFILE)");
    paths = sock;
  }
  std::vector<std::string> list;
  for (size_t start = 0;;) {
    size_t comma = paths.find(',', start);
    std::string p = paths.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (p.empty()) return Error::invalid("--ssh " + v + ": an empty path");
    list.push_back(p);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  bool sockets = false, files = false;
  for (const auto& p : list) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) return Error::invalid("--ssh " + id + ": " + p + ": " + std::strerror(errno));
    if (S_ISSOCK(st.st_mode)) sockets = true;
    else if (S_ISREG(st.st_mode)) files = true;
    else return Error::invalid("--ssh " + id + ": " + p + " is neither an agent socket nor a key file");
  }
  if (sockets && (files || list.size() > 1))
    return Error::invalid("--ssh " + v + ": give one agent socket, or key files");
  if (sockets) {
    char* real = ::realpath(list.front().c_str(), nullptr);
    o.ssh[id] = real ? real : list.front();
    std::free(real);
    o.ssh_keys.erase(id);
  } else {
    // Checked now, so a key that cannot be loaded is a usage error before any work: ssh-keygen
    // derives the public key only from a private key it can read without a passphrase.
    std::string keygen = fs::find_executable("ssh-keygen");
    if (keygen.empty())
      return Error::invalid("--ssh " + id + ": key files need OpenSSH (ssh-keygen, ssh-agent, ssh-add; apt-get install openssh-client), or give an agent socket");
    for (const auto& p : list) {
      std::string out;
      auto rc = run_captured({keygen, "-y", "-P", "", "-f", p}, &out);
      if (!rc.ok()) return Error::invalid("--ssh " + id + ": " + rc.error().str());
      if (*rc != 0) {
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        return Error::invalid("--ssh " + id + ": " + p + " is not a private key ssh can load without a passphrase (" + out +
                              "); add a passphrase-protected key to an agent (ssh-add) and give --ssh " + id + "=$SSH_AUTH_SOCK");
      }
    }
    o.ssh_keys[id] = list;
    o.ssh.erase(id);
  }
  return {};
}

Result<KeyAgent> KeyAgent::start(const std::string& id, const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    struct stat st;
    if (::stat(k.c_str(), &st) != 0) return Error::from_errno("--ssh " + id + ": " + k, errno);
    if (!S_ISREG(st.st_mode)) return Error::invalid("--ssh " + id + ": " + k + " is neither an agent socket nor a key file");
  }
  std::string agent = fs::find_executable("ssh-agent"), add = fs::find_executable("ssh-add");
  if (agent.empty() || add.empty())
    return Error::invalid("--ssh " + id + ": key files need OpenSSH's ssh-agent and ssh-add (apt-get install openssh-client), or give an agent socket");
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/ocib-ssh-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Error::from_errno("--ssh " + id + ": mkdtemp", errno);
  KeyAgent a;
  a.dir_ = tmpl;
  a.socket_ = fs::join(a.dir_, "agent.sock");
  // ssh-agent -D stays in the foreground as our child and dies with us (PDEATHSIG), even when
  // ocib is killed; only async-signal-safe calls between fork and exec.
  std::string sock = a.socket_;
  const char* argv[] = {agent.c_str(), "-D", "-a", sock.c_str(), nullptr};
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("--ssh " + id + ": fork", errno);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  a.pid_ = pid;
  for (int i = 0; i < 500; ++i) {  // up to 5 s for the socket
    struct stat st;
    if (::stat(a.socket_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) break;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      a.pid_ = -1;
      return Error::invalid("--ssh " + id + ": ssh-agent exited before it listened");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::vector<std::string> cmd = {add, "-q"};
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  std::string out;
  // No prompt: a passphrase would be asked of /bin/false, which refuses.
  OCIB_ASSIGN_OR_RETURN(int rc, run_captured(cmd, &out, {"SSH_AUTH_SOCK=" + a.socket_, "SSH_ASKPASS=/bin/false",
                                                        "SSH_ASKPASS_REQUIRE=force", "DISPLAY="}));
  if (rc != 0) {
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return Error::invalid("--ssh " + id + ": ssh-add could not load the key" + (keys.size() > 1 ? "s" : "") +
                          " (a passphrase-protected key must be added to an agent beforehand: ssh-add, then --ssh " +
                          id + "=$SSH_AUTH_SOCK)" + (out.empty() ? "" : ": " + out));
  }
  return a;
}

KeyAgent::~KeyAgent() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (!dir_.empty()) (void)fs::remove_all(dir_);
}

}  // namespace ocib::control

#pragma once
// The RUN sandbox: user, mount, pid, ipc, uts (and by default net) namespaces, an overlayfs
// root from snapshot directories, pivot_root, fresh /proc, minimal /dev, dropped capabilities,
// no_new_privs and a seccomp filter. Knows nothing of images: it takes a plain Spec.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/idmap.h"

namespace ocib::sandbox {

enum class Network { kNone, kHost };

/// A read-only view of a stack of snapshot directories, mounted in the sandbox's mount
/// namespace before pivot_root and handed to `in_sandbox` as an O_PATH directory fd
/// (used by COPY --from=stage to read another stage's merged filesystem).
struct ReadOnlyView {
  std::vector<std::string> layers;  // topmost first; empty = an empty directory
};

struct Spec {
  /// Parent snapshot directories (overlay upperdirs of earlier steps), topmost first. May be
  /// empty (FROM scratch).
  std::vector<std::string> lowerdirs;
  /// A fresh, empty directory that becomes the overlay upperdir; what the step writes lands here.
  std::string upperdir;
  /// Scratch directory on the same filesystem as upperdir (overlay workdir, mountpoints); the
  /// sandbox creates what it needs beneath it; the caller removes it afterwards.
  std::string scratch;

  /// What to run: argv[0] is resolved against PATH from `env` inside the container when it
  /// has no '/'. Exactly one of argv / in_sandbox is used (in_sandbox when set).
  std::vector<std::string> argv;
  /// Runs inside the sandbox after pivot_root and privilege drop, in place of exec; its return
  /// value is the exit code. Receives one O_PATH fd per `views` entry and per `host_dirs` entry,
  /// in that order. It runs in a forked child: it may allocate, must not touch parent threads.
  std::function<int(const std::vector<int>& fds)> in_sandbox;
  std::vector<ReadOnlyView> views;
  /// Host directories opened (O_PATH|O_DIRECTORY) before entering the namespaces (the build
  /// context for COPY).
  std::vector<std::string> host_dirs;

  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";         // created (mkdir -p, owned by uid:gid) if missing
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups (ignored under a single-id map)
  std::string hostname = "ocib";
  Network network = Network::kNone;

  /// stdin is /dev/null; stdout and stderr of the step are written to this fd (e.g. a pipe the
  /// caller reads for progress). -1 = inherit the caller's stderr.
  int output_fd = -1;
};

struct Outcome {
  int exit_code = 0;  // the command's exit status; 128+N when killed by signal N
  int signal = 0;     // the signal that killed it, 0 if it exited
};

/// Runs one step. Returns an Outcome for any command that started (even exit != 0); an Error
/// only when the sandbox itself could not be set up, naming the setup step and errno
/// ("sandbox: mount overlay: Invalid argument"). Nothing stays mounted on the host afterwards:
/// all mounts live in the step's own mount namespace. Safe to call from several threads at
/// once. Removes the mountpoint stubs (/proc, /dev, /sys, /etc/hosts, ...) that it had to create
/// in `upperdir` when they did not exist in any lowerdir, so they never land in a layer.
Result<Outcome> run(const Spec& spec, const IdMapping& ids);

/// Cancels all running steps (SIGKILL to their process groups); used when a sibling vertex
/// fails or on SIGINT. Later calls to run() fail with Errc::kCancelled.
void cancel_all();

/// Removes a directory tree that may hold files owned by subordinate ids (which an unprivileged
/// caller cannot delete itself): first directly, then from inside a user namespace with `ids`
/// as the container's root. A missing path is fine.
Status remove_tree(const std::string& path, const IdMapping& ids);

/// Checks once per process that user namespaces + overlayfs work here; the error explains what
/// is missing (e.g. "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone=0").
Status check_support(const IdMapping& ids);

}  // namespace ocib::sandbox

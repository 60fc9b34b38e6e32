// Capabilities: Docker's default set, applied with raw prctl/capset so the child allocates
// nothing.

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/internal.h"

namespace ocib::sandbox::internal {

namespace {

constexpr int kDefaultCaps[] = {
    CAP_CHOWN,      CAP_DAC_OVERRIDE, CAP_FOWNER,      CAP_FSETID,           CAP_KILL,
    CAP_SETGID,     CAP_SETUID,       CAP_SETPCAP,     CAP_NET_BIND_SERVICE, CAP_NET_RAW,
    CAP_SYS_CHROOT, CAP_MKNOD,        CAP_AUDIT_WRITE, CAP_SETFCAP,
};

}  // namespace

unsigned long long default_cap_mask() {
  unsigned long long m = 0;
  for (int c : kDefaultCaps) m |= 1ULL << c;
  return m;
}

int drop_bounding_set() {
  const unsigned long long keep = default_cap_mask();
  for (int cap = 0; cap < 64; ++cap) {
    int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (r < 0) break;  // past CAP_LAST_CAP
    if (r == 0 || (keep & (1ULL << cap))) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return errno;
  }
  return 0;
}

int set_capabilities(bool root, bool all) {
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return errno;
  unsigned long long m = root ? default_cap_mask() : 0;
  if (root && all) {  // --security=insecure: every capability the bounding set still has
    m = 0;
    for (int cap = 0; cap < 64; ++cap) {
      int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
      if (r < 0) break;
      if (r == 1) m |= 1ULL << cap;
    }
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<__u32>(m);
  data[1].effective = data[1].permitted = static_cast<__u32>(m >> 32);
  if (syscall(SYS_capset, &hdr, data) < 0) return errno;
  return 0;
}

}  // namespace ocib::sandbox::internal

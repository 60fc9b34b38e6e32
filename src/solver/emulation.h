#pragma once

#include "base/error.h"
#include "oci/image.h"

namespace ocib::solver {

/// A RUN for a foreign architecture executes its binaries through a binfmt_misc handler
/// (qemu-user) with the F (fix-binary) flag: the kernel then opens the interpreter at
/// registration, so it works inside the step's root. Ok when one is registered for `p`, else
/// an error saying how to register one.
Status check_emulation(const oci::Platform& p);

}  // namespace ocib::solver

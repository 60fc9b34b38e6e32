#include "bake/bake.h"

namespace ocib::bake {

Status run(const Options&, std::string*) {
  return Error::invalid("ocib bake: not implemented yet");
}

}  // namespace ocib::bake

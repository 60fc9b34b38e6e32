#include "solver/pack_snapshot.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "sandbox/sandbox.h"

namespace ocib::solver {

Result<layers::LayerBlob> pack_snapshot(const std::string& snapshot, const std::string& out_path,
                                        const layers::PackOptions& opts, const IdMapping& ids,
                                        const std::string& staging) {
  if (!ids.needs_helpers) return layers::pack_dir(snapshot, out_path, opts);

  std::string upper = fs::join(staging, "upper"), scratch = fs::join(staging, "scratch");
  std::string outdir = fs::join(staging, "out");
  for (const auto& d : {upper, scratch, outdir}) OCIB_TRY(fs::mkdirs(d, 0755));
  sandbox::Spec spec;
  spec.upperdir = upper;
  spec.scratch = scratch;
  spec.host_dirs = {snapshot, outdir};
  layers::PackOptions inner = opts;
  inner.ids = nullptr;  // inside the namespace the files already show their container ids
  spec.in_sandbox = [inner](const std::vector<int>& fds) -> int {
    std::string dir = "/proc/self/fd/" + std::to_string(fds.at(1));
    auto blob = layers::pack_dir("/proc/self/fd/" + std::to_string(fds.at(0)), dir + "/layer", inner);
    nlohmann::json j;
    if (blob.ok()) {
      j = {{"digest", blob->digest}, {"diff_id", blob->diff_id}, {"size", blob->size},
           {"media_type", blob->media_type}};
    } else {
      j = {{"error", blob.error().str()}};
    }
    return fs::write_file_atomic(dir + "/result.json", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).ok() && blob.ok() ? 0 : 1;
  };
  auto outcome = sandbox::run(spec, ids);
  if (!outcome.ok()) return std::move(outcome).error().wrap("packing in the user namespace");
  auto data = fs::read_file(fs::join(outdir, "result.json"));
  if (!data.ok()) return Error(Errc::kIo, "packing in the user namespace left no result");
  auto j = nlohmann::json::parse(*data, nullptr, false);
  auto str = [&j](const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (j.is_discarded() || !j.is_object() || (j.contains("size") && !j["size"].is_number_integer()))
    return Error(Errc::kIo, "packing in the user namespace: bad result");
  if (j.contains("error")) return Error(Errc::kIo, "packing in the user namespace: " + str("error"));
  if (::rename(fs::join(outdir, "layer").c_str(), out_path.c_str()) != 0)
    return Error::from_errno("rename packed layer", errno);
  layers::LayerBlob b;
  b.digest = str("digest");
  b.diff_id = str("diff_id");
  b.size = j.value("size", int64_t{0});  // an integer, checked above
  b.media_type = str("media_type");
  return b;
}

}  // namespace ocib::solver

#pragma once
// The exporter (BuildKit's exporter/): a solved target stage -> an image config and manifest
// in the store (one per platform, an index for several) -> every -o output, the tags,
// --cache-to, the metadata file and the end-of-build summary.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "exporter/attest.h"
#include "base/error.h"
#include "base/idmap.h"
#include "base/spec.h"
#include "oci/image.h"
#include "oci/layout.h"
#include "plan/plan.h"
#include "progress/progress.h"
#include "registry/registry.h"
#include "solver/solver.h"
#include "store/store.h"

namespace ocib::exporter {

/// --annotation, as buildx: [TYPE[,TYPE...][\[PLATFORM\]]:]KEY=VALUE, TYPE one of manifest
/// (the default), index, manifest-descriptor, index-descriptor.
struct Annotation {
  std::vector<std::string> levels;
  std::optional<oci::Platform> platform;  // only manifests (and their descriptors) of it
  std::string key, value;
};
Result<Annotation> parse_annotation(const std::string& spec);
/// An output's annotation.K / annotation-TYPE[PLATFORM].K keys (buildx), as Annotations.
std::vector<Annotation> output_annotations(const TypedSpec& out);

struct Options {
  std::vector<Annotation> annotations;
  std::vector<std::string> tags;
  std::map<std::string, std::string> labels;  // --label: over the Dockerfile's LABELs
  std::vector<TypedSpec> outputs;             // -o
  std::vector<TypedSpec> cache_to;
  std::string metadata_file;
  std::string timeline_file;  // --timeline: the HTML page of the metadata's step timings
  std::string iidfile;
  std::optional<int64_t> source_date_epoch;
  /// --provenance / --sbom / --attest: attestation manifests in the image index (attest.h).
  AttestOptions attest;
  BuildFacts facts;  // what the provenance records (started, args, base images are added here)
  /// Print the end-of-build summary (one per platform); `ocib bake` prints one for all its
  /// targets (summarize) instead.
  bool summary = true;
};

/// The summary of solvers that ran together (several targets of a bake): wall time from the
/// first step's start to the last one's end, steps run and cached over all of them, and the
/// longest of their critical paths, with its steps' display ids (first first).
struct RunSummary {
  progress::BuildSummary summary;
  std::vector<int> critical_ids;
};
std::optional<RunSummary> summarize(const std::vector<const solver::Solver*>& solved);

/// One platform's image, written to the store by make_image.
struct BuiltImage {
  std::string manifest_digest;
  int64_t manifest_size = 0;
  std::string config_digest;
  oci::Platform platform;  // its entry in an image index
  std::vector<oci::Descriptor> layers;
  std::vector<std::string> diff_ids;
};

struct ExportResult {
  std::string manifest_digest;  // the image's, or the index's for several platforms
  std::string config_digest;    // "" for an index
  oci::Descriptor descriptor;   // the manifest's (or index's): media type, digest, size
  /// The image ID as buildx reports it (--iidfile, -q): the config digest, or for several
  /// platforms the index digest.
  std::string image_id;
};

/// Parses an -o spec ("type=oci,dest=x.tar", buildx syntax): key=value parts, type= required,
/// compression= one of gzip, zstd, uncompressed.
Result<TypedSpec> parse_output(const std::string& spec);

class Exporter {
 public:
  Exporter(const Options& opts, store::Store& st, progress::Reporter& reporter, const IdMapping& ids,
           registry::Client& client)
      : opts_(opts), store_(st), reporter_(reporter), ids_(ids), client_(client) {}

  /// The solved target's config and manifest, written to the store (waits for its layers).
  Result<BuiltImage> make_image(const solver::Solver& solved);
  /// Writes every output for `builds` (one per platform) and their `images`.
  Result<ExportResult> export_outputs(const std::vector<const solver::Solver*>& builds,
                                      const std::vector<BuiltImage>& images);

  /// What is exported: the image (or index) and the builds behind it.
  struct Subject {
    const oci::LayoutImage& img;
    const std::string& manifest_digest;  // the index's for several platforms
    const std::string& config_digest;
    bool multi;
    const std::vector<const solver::Solver*>& builds;
    const std::vector<BuiltImage>& images;
  };
  /// One -o type: the keys its spec takes and the function that writes it.
  struct OutputKind {
    const char* type;
    std::set<std::string> keys;
    bool needs_dest;
    Status (Exporter::*write)(const TypedSpec& out, const Subject& subject);
  };
  static const std::vector<OutputKind>& output_kinds();
  static const OutputKind* output_kind(const std::string& type);

 private:
  Status write_oci(const TypedSpec& out, const Subject& x);
  Status write_docker(const TypedSpec& out, const Subject& x);
  Status write_image(const TypedSpec& out, const Subject& x);
  Status write_filesystem(const TypedSpec& out, const Subject& x);
  oci::TransferProgress progress();
  /// The image's files into `dest_dir`; `keep_owners`: with the image's owners (for a tar,
  /// whose headers carry them), else as root keeps them and a user gets its own files.
  Status export_filesystem(const plan::Plan& pl, const std::string& dest_dir, bool keep_owners = false);
  /// The --annotation values of `level` that apply to platform `p` (null: no platform).
  std::map<std::string, std::string> annotations_for(const std::string& level, const oci::Platform* p) const;
  Status write_metadata(const ExportResult& r, const std::vector<const solver::Solver*>& builds,
                        const std::vector<BuiltImage>& images);
  void print_summary(const solver::Solver& solved);
  bool export_unchanged(const std::string& dest, const std::string& type, const std::string& manifest);
  void record_export(const std::string& dest, const std::string& type, const std::string& manifest);

  const Options& opts_;
  store::Store& store_;
  progress::Reporter& reporter_;
  const IdMapping& ids_;
  registry::Client& client_;
  std::vector<std::string> pushed_;
};

}  // namespace ocib::exporter

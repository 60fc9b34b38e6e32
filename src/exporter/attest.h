#pragma once
// Attestations as BuildKit attaches them (--provenance, --sbom): per platform an attestation
// manifest in the image index, platform unknown/unknown, annotated
// vnd.docker.reference.type=attestation-manifest and vnd.docker.reference.digest=<the image
// manifest>, whose layers are in-toto statements (application/vnd.in-toto+json, annotated with
// their in-toto.io/predicate-type) naming the image manifest as their subject.

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "exporter/sbom.h"
#include "oci/image.h"

namespace ocib::store {
class Store;
}
namespace ocib::solver {
class Solver;
}
namespace ocib::plan {
struct Step;
}
namespace ocib::progress {
class Reporter;
}

namespace ocib::exporter {

struct AttestOptions {
  bool provenance = false;
  std::string provenance_mode = "min";  // min | max
  bool sbom = false;
  bool any() const { return provenance || sbom; }
};

/// Parses buildx's --provenance / --sbom / --attest values into `o` (usage errors as kInvalidArgument).
Status parse_provenance(const std::string& value, AttestOptions& o);  // true|false|mode=min|max[,...]
Status parse_sbom(const std::string& value, AttestOptions& o);        // true|false|generator=...
Status parse_attest(const std::string& value, AttestOptions& o);      // type=provenance|sbom[,...]

/// What the provenance statement records about the build.
struct BuildFacts {
  std::string started, finished;  // RFC 3339
  std::string invocation_id;
  std::string dockerfile;  // the Dockerfile's name (configSource.entryPoint)
  std::map<std::string, std::string> build_args;
  std::string target;
  struct Material {
    std::string ref, digest;
    oci::Platform platform;
  };
  std::vector<Material> materials;  // base images
};

/// The packages of the image that `build` built (step `top`), scanned in a sandbox over a
/// read-only view of its layers (sbom.h); the scan's cost is reported as a note.
Result<ScanReport> scan_built_image(const solver::Solver& build, const plan::Step* top, progress::Reporter& reporter);

/// The statements' subject name, as BuildKit writes it: pkg:docker/NAME?platform=linux%2Famd64.
std::string subject_name(const std::string& image_name, const oci::Platform& p);

/// The in-toto statements for one image.
nlohmann::json provenance_statement(const std::string& subject_name, const std::string& manifest_digest,
                                    const oci::Platform& platform, const BuildFacts& facts, const std::string& mode);
nlohmann::json sbom_statement(const std::string& subject_name, const std::string& manifest_digest,
                              const std::vector<Package>& packages, const std::string& created,
                              const std::vector<std::string>& notes = {});

/// Writes the statements as blobs plus their attestation manifest (and its config) into the
/// store; returns the manifest's descriptor for the index (annotations set) and every blob.
Result<oci::Descriptor> store_attestation_manifest(store::Store& st, const std::string& image_manifest_digest,
                                                   const std::vector<nlohmann::json>& statements,
                                                   std::vector<std::string>* blobs);

}  // namespace ocib::exporter

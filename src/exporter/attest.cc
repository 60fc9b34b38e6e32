#include "exporter/attest.h"

#include <algorithm>
#include <sstream>

#include "base/sha256.h"
#include "base/spec.h"
#include "solver/solver.h"
#include "store/store.h"

namespace ocib::exporter {

using json = nlohmann::json;

namespace {

constexpr const char* kStatementType = "https://in-toto.io/Statement/v0.1";
constexpr const char* kProvenanceType = "https://slsa.dev/provenance/v0.2";
constexpr const char* kSpdxType = "https://spdx.dev/Document";
constexpr const char* kInTotoMediaType = "application/vnd.in-toto+json";

std::string hex_of(const std::string& digest) {
  return digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : digest;
}

std::string platform_str(const oci::Platform& p) {
  return p.os + "/" + p.architecture + (p.variant.empty() ? "" : "/" + p.variant);
}

// purl qualifiers percent-encode '/' (pkg:docker/debian@bookworm?platform=linux%2Famd64).
std::string pct(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '/' ? std::string("%2F") : std::string(1, c);
  return out;
}

}  // namespace

// A docker purl as BuildKit writes it: docker.io/library/debian:bookworm -> debian@bookworm.
std::string docker_purl(std::string ref) {
  for (const char* prefix : {"docker.io/library/", "docker.io/"})
    if (ref.rfind(prefix, 0) == 0) {
      ref = ref.substr(std::string(prefix).size());
      break;
    }
  if (ref.find('@') == std::string::npos) {
    auto colon = ref.rfind(':');
    if (colon != std::string::npos && ref.find('/', colon) == std::string::npos) ref[colon] = '@';
  }
  return "pkg:docker/" + ref;
}

std::string subject_name(const std::string& image_name, const oci::Platform& p) {
  return docker_purl(image_name) + "?platform=" + pct(platform_str(p));
}

namespace {

json subject(const std::string& name, const std::string& manifest_digest) {
  return json::array({{{"name", name}, {"digest", {{"sha256", hex_of(manifest_digest)}}}}});
}

Status bool_or_keys(const std::string& flag, const std::string& value, bool* on,
                    const std::function<Status(const std::string&, const std::string&)>& key) {
  if (value.empty() || value == "true" || value == "1") {
    *on = true;
    return {};
  }
  if (value == "false" || value == "0") {
    *on = false;
    return {};
  }
  *on = true;
  // buildx reads these as CSV: builder-id="a,b" is one field.
  auto fields = split_csv(value);
  if (!fields.ok()) return Error::invalid(flag + " " + value + ": " + fields.error().message());
  for (const auto& part : *fields) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    if (eq == std::string::npos) return Error::invalid(flag + " " + value + ": want true, false or KEY=VALUE pairs");
    OCIB_TRY(key(part.substr(0, eq), part.substr(eq + 1)));
  }
  return {};
}

}  // namespace

Status parse_provenance(const std::string& value, AttestOptions& o) {
  return bool_or_keys("--provenance", value, &o.provenance, [&](const std::string& k, const std::string& v) -> Status {
    if (k == "mode") {
      if (v != "min" && v != "max") return Error::invalid("--provenance mode=" + v + ": want min or max");
      o.provenance_mode = v;
      return {};
    }
    if (k == "disabled") {
      o.provenance = v != "true";
      return {};
    }
    if (k == "type") return {};
    return Error::invalid("--provenance: unknown key \"" + k + "\" (mode)" + did_you_mean(k, {"mode", "disabled"}));
  });
}

Status parse_sbom(const std::string& value, AttestOptions& o) {
  return bool_or_keys("--sbom", value, &o.sbom, [&](const std::string& k, const std::string& v) -> Status {
    if (k == "disabled") {
      o.sbom = v != "true";
      return {};
    }
    // generator=IMAGE names BuildKit's scanner image; ocib scans itself.
    if (k == "generator" || k == "type") return {};
    return Error::invalid("--sbom: unknown key \"" + k + "\"" + did_you_mean(k, {"generator", "disabled"}));
  });
}

Status parse_attest(const std::string& value, AttestOptions& o) {
  std::string type, rest;
  auto fields = split_csv(value);
  if (!fields.ok()) return Error::invalid("--attest " + value + ": " + fields.error().message());
  for (const auto& part : *fields) {
    if (part.empty()) continue;
    if (part.rfind("type=", 0) == 0) {
      type = part.substr(5);
      continue;
    }
    // Passed on as CSV again: a field holding a comma or a quote stays one field.
    std::string field = part;
    if (field.find_first_of(",\"") != std::string::npos) {
      std::string q = "\"";
      for (char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      field = q + "\"";
    }
    rest += (rest.empty() ? "" : ",") + field;
  }
  if (type == "provenance") return parse_provenance(rest.empty() ? "true" : rest, o);
  if (type == "sbom") return parse_sbom(rest.empty() ? "true" : rest, o);
  return Error::invalid("--attest " + value + ": type must be provenance or sbom" +
                        did_you_mean(type, {"provenance", "sbom"}));
}

Result<ScanReport> scan_built_image(const solver::Solver& build, const plan::Step* top, progress::Reporter& reporter) {
  auto payload = build.in_image_view(top, [](int root_fd) -> Result<std::string> {
    return report_to_json(scan_image(root_fd)).dump(-1, ' ', false, json::error_handler_t::replace);
  });
  if (!payload.ok()) return std::move(payload).error().wrap("sbom: scanning the image");
  json j = json::parse(*payload, nullptr, false);
  if (!j.is_object()) return Error(Errc::kCorrupt, "sbom: the image scan returned no report");
  ScanReport r = report_from_json(j);
  reporter.note("sbom: " + std::to_string(r.packages.size()) + " packages (" + describe_stats(r.stats) + ")");
  // Notes name image paths; the reporters escape what they show.
  for (const auto& n : r.notes) reporter.note("sbom: " + n);
  return r;
}

json provenance_statement(const std::string& subject_name, const std::string& manifest_digest,
                          const oci::Platform& platform, const BuildFacts& facts, const std::string& mode) {
  json materials = json::array();
  for (const auto& m : facts.materials)
    materials.push_back({{"uri", exporter::subject_name(m.ref, m.platform)},
                         {"digest", {{"sha256", hex_of(m.digest)}}}});
  json params = {{"frontend", "dockerfile.v0"}, {"locals", json::array({{{"name", "context"}}, {{"name", "dockerfile"}}})}};
  json args = json::object();
  if (!facts.target.empty()) args["target"] = facts.target;
  // Build args only in max mode (as BuildKit: they may carry what should not be published).
  if (mode == "max")
    for (const auto& [k, v] : facts.build_args) args["build-arg:" + k] = v;
  if (!args.empty()) params["args"] = args;
  json predicate = {
      {"builder", {{"id", ""}}},
      {"buildType", "https://mobyproject.org/buildkit@v1"},
      {"materials", materials},
      {"invocation",
       {{"configSource", {{"entryPoint", facts.dockerfile.empty() ? "Dockerfile" : facts.dockerfile}}},
        {"parameters", params},
        {"environment", {{"platform", platform_str(platform)}}}}},
      {"metadata",
       {{"buildInvocationID", facts.invocation_id},
        {"buildStartedOn", facts.started},
        {"buildFinishedOn", facts.finished},
        {"completeness", {{"parameters", mode == "max"}, {"environment", true}, {"materials", false}}},
        {"reproducible", false},
        {"https://mobyproject.org/buildkit@v1#metadata", {{"ocib.builder", "ocib"}}}}}};
  return {{"_type", kStatementType}, {"predicateType", kProvenanceType},
          {"subject", subject(subject_name, manifest_digest)}, {"predicate", predicate}};
}

json sbom_statement(const std::string& subject_name, const std::string& manifest_digest,
                    const std::vector<Package>& packages, const std::string& created,
                    const std::vector<std::string>& notes) {
  json pkgs = json::array(), rels = json::array();
  for (const auto& p : packages) {
    const std::string purl = p.purl();
    std::string id = "SPDXRef-Package-" + p.type + "-";
    for (char c : p.name) id += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '-';
    // The same module in two Go binaries is two packages (syft): the location is in the id.
    id += "-" + Sha256::hex(purl + "\n" + p.location).substr(0, 16);
    json pkg = {{"name", p.name},
                {"SPDXID", id},
                {"versionInfo", p.version_info()},
                {"downloadLocation", "NOASSERTION"},
                {"filesAnalyzed", false},
                {"licenseConcluded", "NOASSERTION"},
                {"licenseDeclared", "NOASSERTION"},
                {"copyrightText", "NOASSERTION"},
                {"externalRefs", json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                                               {"referenceType", "purl"},
                                               {"referenceLocator", purl}}})}};
    if (!p.location.empty()) pkg["sourceInfo"] = "acquired package info from " + p.location;
    pkgs.push_back(std::move(pkg));
    rels.push_back({{"spdxElementId", "SPDXRef-DOCUMENT"}, {"relationshipType", "DESCRIBES"}, {"relatedSpdxElement", id}});
  }
  json doc = {{"spdxVersion", "SPDX-2.3"},
              {"dataLicense", "CC0-1.0"},
              {"SPDXID", "SPDXRef-DOCUMENT"},
              {"name", subject_name},
              {"documentNamespace", "https://ocib.dev/spdx/" + hex_of(manifest_digest)},
              {"creationInfo", {{"created", created}, {"creators", json::array({"Tool: ocib"})}}},
              {"packages", pkgs},
              {"relationships", rels}};
  if (!notes.empty()) {
    std::string c;
    for (const auto& n : notes) c += (c.empty() ? "" : "\n") + n;
    doc["creationInfo"]["comment"] = c;
  }
  return {{"_type", kStatementType}, {"predicateType", kSpdxType},
          {"subject", subject(subject_name, manifest_digest)}, {"predicate", doc}};
}

Result<oci::Descriptor> store_attestation_manifest(store::Store& st, const std::string& image_manifest_digest,
                                                   const std::vector<json>& statements, std::vector<std::string>* blobs) {
  std::vector<oci::Descriptor> layers;
  json diff_ids = json::array();
  for (const auto& s : statements) {
    std::string bytes = s.dump(-1, ' ', false, json::error_handler_t::replace);
    OCIB_ASSIGN_OR_RETURN(std::string d, st.put_blob(bytes));
    blobs->push_back(d);
    diff_ids.push_back(d);
    layers.push_back({kInTotoMediaType, d, static_cast<int64_t>(bytes.size()),
                      {{"in-toto.io/predicate-type", s.value("predicateType", "")}}, std::nullopt});
  }
  json config = {{"architecture", "unknown"}, {"os", "unknown"}, {"config", json::object()},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string cbytes = oci::canonical(config);
  OCIB_ASSIGN_OR_RETURN(std::string cd, st.put_blob(cbytes));
  blobs->push_back(cd);
  oci::Descriptor cdesc{oci::kMediaTypeConfig, cd, static_cast<int64_t>(cbytes.size()), {}, std::nullopt};
  std::string mbytes = oci::canonical(oci::make_manifest(cdesc, layers));
  OCIB_ASSIGN_OR_RETURN(std::string md, st.put_blob(mbytes));
  blobs->push_back(md);
  oci::Platform unknown;
  unknown.os = "unknown";
  unknown.architecture = "unknown";
  return oci::Descriptor{oci::kMediaTypeManifest, md, static_cast<int64_t>(mbytes.size()),
                         {{"vnd.docker.reference.digest", image_manifest_digest},
                          {"vnd.docker.reference.type", "attestation-manifest"}},
                         unknown};
}

}  // namespace ocib::exporter

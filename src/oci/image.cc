#include "oci/image.h"

#include <sys/utsname.h>

#include <ctime>

#include "base/sha256.h"

namespace ocib::oci {

namespace {

using nlohmann::json;

// Non-throwing accessors: a wrong type is reported as an error, never an exception.
Status get_string(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string()) return Error(Errc::kCorrupt, std::string("\"") + key + "\": not a string");
  *out = it->get<std::string>();
  return {};
}

Status get_string_array(const json& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_array()) return Error(Errc::kCorrupt, std::string("\"") + key + "\": not an array");
  out->clear();
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return Error(Errc::kCorrupt, std::string("\"") + key + "\": non-string element");
    }
    out->push_back(v.get<std::string>());
  }
  return {};
}

Status get_string_map(const json& obj, const char* key, std::map<std::string, std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_object()) return Error(Errc::kCorrupt, std::string("\"") + key + "\": not an object");
  out->clear();
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (!kv.value().is_string()) {
      return Error(Errc::kCorrupt, std::string("\"") + key + "\": non-string value");
    }
    (*out)[kv.key()] = kv.value().get<std::string>();
  }
  return {};
}

// {"80/tcp":{}} style sets.
Status get_key_set(const json& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_object()) return Error(Errc::kCorrupt, std::string("\"") + key + "\": not an object");
  out->clear();
  for (auto kv = it->begin(); kv != it->end(); ++kv) out->push_back(kv.key());
  return {};
}

json key_set(const std::vector<std::string>& keys) {
  json o = json::object();
  for (const auto& k : keys) o[k] = json::object();
  return o;
}

json platform_json(const Platform& p) {
  json j = json::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

Status platform_from(const json& j, Platform* p) {
  OCIB_TRY(get_string(j, "architecture", &p->architecture));
  OCIB_TRY(get_string(j, "os", &p->os));
  OCIB_TRY(get_string(j, "variant", &p->variant));
  return {};
}

}  // namespace

Platform Platform::host() {
  Platform p;
  struct utsname u {};
  std::string m = ::uname(&u) == 0 ? u.machine : "";
  if (m == "x86_64" || m == "amd64") {
    p.architecture = "amd64";
  } else if (m == "aarch64" || m == "arm64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (m == "i386" || m == "i486" || m == "i586" || m == "i686") {
    p.architecture = "386";
  } else if (m.rfind("armv7", 0) == 0) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (m.rfind("armv6", 0) == 0) {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (m.rfind("armv5", 0) == 0) {
    p.architecture = "arm";
    p.variant = "v5";
  } else if (m == "ppc64le") {
    p.architecture = "ppc64le";
  } else if (m == "s390x") {
    p.architecture = "s390x";
  } else if (m == "riscv64") {
    p.architecture = "riscv64";
  } else if (m == "mips64") {
    p.architecture = "mips64";
  } else if (m == "loongarch64") {
    p.architecture = "loong64";
  } else {
    p.architecture = m;
  }
  return p;
}

nlohmann::json ImageConfig::to_json() const {
  json j = json::object();
  if (!created.empty()) j["created"] = created;
  if (!author.empty()) j["author"] = author;
  j["architecture"] = platform.architecture;
  j["os"] = platform.os;
  if (!platform.variant.empty()) j["variant"] = platform.variant;

  json c = json::object();
  const RunConfig& rc = config;
  if (!rc.user.empty()) c["User"] = rc.user;
  if (!rc.env.empty()) c["Env"] = rc.env;
  // As BuildKit (Go's omitempty): an empty Entrypoint/Cmd (`ENTRYPOINT []`, which clears the
  // base's) is left out; a runtime reads both the same way.
  if (rc.entrypoint && !rc.entrypoint->empty()) c["Entrypoint"] = *rc.entrypoint;
  if (rc.cmd && !rc.cmd->empty()) c["Cmd"] = *rc.cmd;
  if (!rc.working_dir.empty()) c["WorkingDir"] = rc.working_dir;
  if (!rc.labels.empty()) c["Labels"] = rc.labels;
  if (!rc.exposed_ports.empty()) c["ExposedPorts"] = key_set(rc.exposed_ports);
  if (!rc.volumes.empty()) c["Volumes"] = key_set(rc.volumes);
  if (!rc.stop_signal.empty()) c["StopSignal"] = rc.stop_signal;
  if (!rc.shell.empty()) c["Shell"] = rc.shell;
  if (rc.healthcheck) c["Healthcheck"] = *rc.healthcheck;
  if (!rc.onbuild.empty()) c["OnBuild"] = rc.onbuild;
  j["config"] = std::move(c);

  json rootfs = json::object();
  rootfs["type"] = "layers";
  rootfs["diff_ids"] = diff_ids;
  j["rootfs"] = std::move(rootfs);

  if (!history.empty()) {
    json h = json::array();
    for (const auto& e : history) {
      json he = json::object();
      if (!e.created.empty()) he["created"] = e.created;
      if (!e.created_by.empty()) he["created_by"] = e.created_by;
      if (!e.comment.empty()) he["comment"] = e.comment;
      if (e.empty_layer) he["empty_layer"] = true;
      h.push_back(std::move(he));
    }
    j["history"] = std::move(h);
  }
  return j;
}

Result<ImageConfig> ImageConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Error(Errc::kCorrupt, "image config: not a JSON object");
  ImageConfig ic;
  ic.platform.os.clear();
  OCIB_TRY(get_string(j, "created", &ic.created));
  OCIB_TRY(get_string(j, "author", &ic.author));
  OCIB_TRY(platform_from(j, &ic.platform));

  auto c = j.find("config");
  if (c != j.end() && !c->is_null()) {
    if (!c->is_object()) return Error(Errc::kCorrupt, "image config: \"config\" not an object");
    RunConfig& rc = ic.config;
    OCIB_TRY(get_string(*c, "User", &rc.user));
    OCIB_TRY(get_string_array(*c, "Env", &rc.env));
    for (auto [key, field] : {std::pair{"Entrypoint", &rc.entrypoint}, {"Cmd", &rc.cmd}}) {
      auto it = c->find(key);
      if (it != c->end() && !it->is_null()) {
        std::vector<std::string> v;
        OCIB_TRY(get_string_array(*c, key, &v));
        *field = std::move(v);
      }
    }
    OCIB_TRY(get_string(*c, "WorkingDir", &rc.working_dir));
    OCIB_TRY(get_string_map(*c, "Labels", &rc.labels));
    OCIB_TRY(get_key_set(*c, "ExposedPorts", &rc.exposed_ports));
    OCIB_TRY(get_key_set(*c, "Volumes", &rc.volumes));
    OCIB_TRY(get_string(*c, "StopSignal", &rc.stop_signal));
    OCIB_TRY(get_string_array(*c, "Shell", &rc.shell));
    if (auto hc = c->find("Healthcheck"); hc != c->end() && hc->is_object()) rc.healthcheck = *hc;
    if (auto ob = c->find("OnBuild"); ob != c->end() && !ob->is_null())
      OCIB_TRY(get_string_array(*c, "OnBuild", &rc.onbuild));
  }

  auto r = j.find("rootfs");
  if (r != j.end() && !r->is_null()) {
    if (!r->is_object()) return Error(Errc::kCorrupt, "image config: \"rootfs\" not an object");
    OCIB_TRY(get_string_array(*r, "diff_ids", &ic.diff_ids));
  }

  auto h = j.find("history");
  if (h != j.end() && !h->is_null()) {
    if (!h->is_array()) return Error(Errc::kCorrupt, "image config: \"history\" not an array");
    for (const auto& he : *h) {
      if (!he.is_object()) return Error(Errc::kCorrupt, "image config: bad history entry");
      HistoryEntry e;
      OCIB_TRY(get_string(he, "created", &e.created));
      OCIB_TRY(get_string(he, "created_by", &e.created_by));
      OCIB_TRY(get_string(he, "comment", &e.comment));
      auto el = he.find("empty_layer");
      if (el != he.end() && el->is_boolean()) e.empty_layer = el->get<bool>();
      ic.history.push_back(std::move(e));
    }
  }
  return ic;
}

std::string canonical(const nlohmann::json& j) {
  // Object keys are already sorted (std::map); replace invalid UTF-8 instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string digest_of(std::string_view bytes) { return "sha256:" + Sha256::hex(bytes); }

nlohmann::json descriptor_json(const Descriptor& d) {
  json j = json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest;
  j["size"] = d.size;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) j["platform"] = platform_json(*d.platform);
  return j;
}

Result<Descriptor> descriptor_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Error(Errc::kCorrupt, "descriptor: not a JSON object");
  Descriptor d;
  OCIB_TRY(get_string(j, "mediaType", &d.media_type));
  OCIB_TRY(get_string(j, "digest", &d.digest));
  if (d.digest.empty()) return Error(Errc::kCorrupt, "descriptor: missing digest");
  auto s = j.find("size");
  if (s == j.end() || !s->is_number_integer() || s->get<int64_t>() < 0) {
    return Error(Errc::kCorrupt, "descriptor: missing or bad size");
  }
  d.size = s->get<int64_t>();
  OCIB_TRY(get_string_map(j, "annotations", &d.annotations));
  auto p = j.find("platform");
  if (p != j.end() && p->is_object()) {
    Platform pl;
    pl.os.clear();
    OCIB_TRY(platform_from(*p, &pl));
    d.platform = std::move(pl);
  }
  return d;
}

Result<nlohmann::json> parse_json(std::string_view text, const std::string& what) {
  bool too_deep = false;
  // The parser itself is iterative; the callback only sees how deep each value sits.
  json::parser_callback_t bound = [&too_deep](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return !too_deep;
  };
  json j = json::parse(text, bound, /*allow_exceptions=*/false);
  if (too_deep) {
    return Error(Errc::kCorrupt, what + ": JSON nested deeper than " +
                                     std::to_string(kMaxJsonDepth) + " levels");
  }
  if (j.is_discarded()) return Error(Errc::kCorrupt, what + ": not valid JSON");
  return j;
}

bool is_index_json(const nlohmann::json& j) { return j.is_object() && j.contains("manifests"); }

namespace {

Status descriptors_from(const json& obj, const char* key, const std::string& what, bool required,
                        std::vector<Descriptor>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Error(Errc::kCorrupt, what + ": no \"" + key + "\" array");
    return {};
  }
  if (!it->is_array()) return Error(Errc::kCorrupt, what + ": \"" + key + "\" is not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = descriptor_from_json((*it)[i]);
    if (!d.ok()) {  // the place in the message itself: some callers print messages only
      return Error(d.error().code(), what + ": \"" + key + "\"[" + std::to_string(i) + "]: " +
                                         d.error().message());
    }
    out->push_back(std::move(*d));
  }
  return {};
}

}  // namespace

Result<ImageManifest> manifest_from_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) return Error(Errc::kCorrupt, what + ": manifest is not a JSON object");
  ImageManifest m;
  if (auto st = get_string(j, "mediaType", &m.media_type); !st.ok()) {
    return Error(Errc::kCorrupt, what + ": " + st.error().message());
  }
  auto c = j.find("config");
  if (c == j.end()) return Error(Errc::kCorrupt, what + ": manifest without config");
  auto cd = descriptor_from_json(*c);
  if (!cd.ok()) return Error(Errc::kCorrupt, what + ": \"config\": " + cd.error().message());
  m.config = std::move(*cd);
  OCIB_TRY(descriptors_from(j, "layers", what, false, &m.layers));
  return m;
}

Result<ImageIndex> index_from_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) return Error(Errc::kCorrupt, what + ": index is not a JSON object");
  ImageIndex x;
  if (auto st = get_string(j, "mediaType", &x.media_type); !st.ok()) {
    return Error(Errc::kCorrupt, what + ": " + st.error().message());
  }
  OCIB_TRY(descriptors_from(j, "manifests", what, true, &x.manifests));
  return x;
}

nlohmann::json make_manifest(const Descriptor& config, const std::vector<Descriptor>& layers,
                             const std::map<std::string, std::string>& annotations) {
  json j = json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = kMediaTypeManifest;
  j["config"] = descriptor_json(config);
  json l = json::array();
  for (const auto& d : layers) l.push_back(descriptor_json(d));
  j["layers"] = std::move(l);
  if (!annotations.empty()) j["annotations"] = annotations;
  return j;
}

nlohmann::json make_image_index(const std::vector<Descriptor>& manifests,
                                const std::map<std::string, std::string>& annotations) {
  json j = json::object();
  j["schemaVersion"] = 2;
  j["mediaType"] = kMediaTypeIndex;
  json m = json::array();
  for (const auto& d : manifests) m.push_back(descriptor_json(d));
  j["manifests"] = std::move(m);
  if (!annotations.empty()) j["annotations"] = annotations;
  return j;
}

std::string rfc3339(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  if (::gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  char buf[64];
  size_t n = ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

}  // namespace ocib::oci

#pragma once
// Registry authentication: WWW-Authenticate challenges and credential lookup
// (docker config.json, podman auth.json, docker-credential-* helpers).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace ocib::registry {

/// One parsed `WWW-Authenticate` challenge: scheme ("bearer"/"basic", lowercased) and params.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;  // keys lowercased: realm, service, scope, error
};

/// Parses a header value such as `Bearer realm="https://a/token",service="reg",scope="x:y:pull"`.
/// Returns an empty scheme when the header is unusable.
Challenge parse_challenge(std::string_view header);

struct Credential {
  std::string username;
  std::string password;  // or identity token; never logged
};

std::string base64_encode(std::string_view in);
Result<std::string> base64_decode(std::string_view in);

/// Where credentials are looked up, first match wins.
struct CredentialSources {
  /// Explicit auth file (Options::auth_file); when set, only this file is used.
  std::string auth_file;
  /// Defaults from the environment: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
  /// $DOCKER_CONFIG/config.json or ~/.docker/config.json.
  static std::vector<std::string> default_files();
};

/// Credentials for a registry host ("docker.io", "127.0.0.1:5000"), or nullopt for anonymous.
/// Errors only for unreadable/malformed files or a failing credential helper.
Result<std::optional<Credential>> lookup_credentials(const std::string& registry,
                                                     const CredentialSources& src);

/// Runs `docker-credential-<helper> get` with the server URL on stdin.
Result<std::optional<Credential>> run_credential_helper(const std::string& helper,
                                                        const std::string& server);

}  // namespace ocib::registry

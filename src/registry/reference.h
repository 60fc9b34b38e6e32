#pragma once
// Image references: parsing and Docker Hub normalisation.

#include <string>
#include <string_view>

#include "base/error.h"

namespace ocib::registry {

inline constexpr const char* kDockerHub = "docker.io";

/// A normalised image reference: "busybox" -> docker.io/library/busybox:latest.
struct Reference {
  std::string registry;    // "docker.io", "127.0.0.1:5000"
  std::string repository;  // "library/busybox"
  std::string tag;         // "latest" unless a digest alone was given
  std::string digest;      // "sha256:<hex>" or ""

  /// Accepts name, name:tag, name@sha256:..., name:tag@sha256:..., host[:port]/ns/name:tag.
  static Result<Reference> parse(std::string_view s);
  /// Canonical form: "registry/repository[:tag][@digest]".
  std::string str() const;
  /// What goes after /manifests/: the digest when pinned, else the tag.
  std::string ref_or_tag() const;
};

/// True for "sha256:" + 64 lowercase hex digits.
bool valid_digest(std::string_view d);

}  // namespace ocib::registry

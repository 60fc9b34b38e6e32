#pragma once
// Streaming SHA-256 over OpenSSL's EVP interface.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace ocib {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t len);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Lowercase hex of the digest; the object may not be updated afterwards.
  std::string hex_final();

  static std::string hex(std::string_view data);
  /// Hashes a file's contents.
  static Result<std::string> hex_file(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocib

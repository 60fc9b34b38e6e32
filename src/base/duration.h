#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ocib {

/// Go's time.ParseDuration ("1m30s", "500ms", "1.5h", "0"), in nanoseconds; nullopt when it
/// is not one (HEALTHCHECK's flags are Go durations in BuildKit).
std::optional<int64_t> parse_go_duration(const std::string& s);

}  // namespace ocib

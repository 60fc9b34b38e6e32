#pragma once
// Platform rules in one place: parsing a --platform / FROM --platform value, containerd's
// normalisation, matching an image's platform against a wanted one, and the text form.

#include <string>
#include <vector>

#include "base/error.h"
#include "oci/image.h"

namespace ocib::oci {

/// As containerd normalises platforms: aarch64 -> arm64, x86_64 -> amd64, arm64/v8 -> arm64,
/// arm -> arm/v7, armhf -> arm/v7, armel -> arm/v6.
Platform normalize(Platform p);
/// An image made for `have` serves `want` (normalised; an empty variant matches any).
bool matches(const Platform& have, const Platform& want);
/// Equal after normalisation (variants included).
bool same(const Platform& a, const Platform& b);
/// The host's platform, normalised.
Platform host();
/// Whether the host's CPU runs binaries of `p` without emulation (amd64 also runs 386).
bool runs_natively(const Platform& p);
/// "os/arch[/variant]".
std::string str(const Platform& p);
/// Parses "linux/arm64", "arm64", "linux/arm/v7" (normalised; any OS).
Result<Platform> parse(const std::string& spec);
/// Parses a comma list of platforms; a platform listed twice is an error.
Result<std::vector<Platform>> parse_list(const std::string& spec);

/// Index of the best entry of `candidates` for `want`: an exact variant over an omitted one
/// (arm64 entries often omit "v8"); -1 when none serves it.
int best_match(const std::vector<Platform>& candidates, const Platform& want);

}  // namespace ocib::oci

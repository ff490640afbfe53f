#include "common/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace eofaas::common {
namespace {

constexpr absl::string_view kSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789";
constexpr size_t kSuffixLength = 5;
constexpr size_t kMaxLabelLength = 63;

bool IsLowerAlnum(char c) { return absl::ascii_islower(c) || absl::ascii_isdigit(c); }

// FNV-1a: stable across builds and platforms, unlike std::hash.
uint64_t Fnv1a(absl::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

bool IsRfc1123Label(absl::string_view name) {
  if (name.empty() || name.size() > kMaxLabelLength) return false;
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) return false;
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

absl::Status ValidateFunctionName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (name.size() > kMaxFunctionNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", name, "\" is longer than ",
                                                   kMaxFunctionNameLength, " characters"));
  }
  if (!IsRfc1123Label(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", name,
                     "\" is not an RFC 1123 label (lower-case letters, digits and '-', starting "
                     "and ending with a letter or digit)"));
  }
  return absl::OkStatus();
}

std::string NameSuffix(absl::string_view uid, int64_t generation) {
  uint64_t hash = Fnv1a(absl::StrCat(uid, "/", generation));
  std::string suffix;
  for (size_t i = 0; i < kSuffixLength; ++i) {
    suffix.push_back(kSuffixAlphabet[hash % kSuffixAlphabet.size()]);
    hash /= kSuffixAlphabet.size();
  }
  return suffix;
}

std::string DeploymentName(absl::string_view function_name, absl::string_view uid,
                           int64_t generation) {
  std::string base(function_name);
  if (base.empty() || !absl::ascii_isalpha(base.front())) base = absl::StrCat("fn-", base);
  const size_t max_base = kMaxLabelLength - kSuffixLength - 1;
  if (base.size() > max_base) base.resize(max_base);
  while (!base.empty() && base.back() == '-') base.pop_back();
  return absl::StrCat(base, "-", NameSuffix(uid, generation));
}

}  // namespace eofaas::common

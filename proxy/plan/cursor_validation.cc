#include "proxy/plan/cursor_validation.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/plan/data_uri.h"

namespace eofaas::proxy {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view name, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ".", name, ": ", problem));
}

absl::Status NotNegative(absl::string_view field, absl::string_view name, int64_t value) {
  if (value >= 0) return absl::OkStatus();
  return Invalid(field, name, absl::StrCat("must not be negative, got ", value));
}

// ValidateCursor; with `would_block` set, a file path is resolved without blocking, and
// *would_block is true when that was not possible.
absl::Status Validate(const eofaas::v1::DataCursor& cursor, const DataRoots& roots,
                      CheckedFiles* checked, absl::string_view field, bool* would_block) {
  if (cursor.uri().empty()) return Invalid(field, "uri", "required");
  for (auto [name, value] : {std::pair<absl::string_view, int64_t>{"offset", cursor.offset()},
                             {"part", cursor.part()},
                             {"parts", cursor.parts()},
                             {"size", cursor.size()}}) {
    if (absl::Status status = NotNegative(field, name, value); !status.ok()) return status;
  }
  if (cursor.has_length()) {
    if (absl::Status status = NotNegative(field, "length", cursor.length()); !status.ok()) {
      return status;
    }
    if (cursor.offset() > std::numeric_limits<int64_t>::max() - cursor.length()) {
      return Invalid(field, "length",
                     absl::StrCat("offset ", cursor.offset(), " + length ", cursor.length(),
                                  " overflows int64"));
    }
  }
  if (!eofaas::v1::Framing_IsValid(cursor.framing())) {
    return Invalid(field, "framing", absl::StrCat("unknown value ", cursor.framing()));
  }

  // A file URI that passed lately is taken as it is: neither parsed nor resolved again. Only
  // file URIs have verdicts, so no other is looked up.
  if (checked != nullptr && absl::StartsWithIgnoreCase(cursor.uri(), "file:") &&
      checked->Fresh(cursor.uri())) {
    return absl::OkStatus();
  }
  const std::string uri_field = absl::StrCat(field, ".uri");
  absl::StatusOr<DataUri> uri = ParseDataUri(cursor.uri(), uri_field);
  if (!uri.ok()) return uri.status();
  switch (uri->scheme) {
    case UriScheme::kFile: {
      if (absl::StrContains(cursor.uri(), '?')) {
        return Invalid(field, "uri", "a file URI has no query: percent-encode '?' as %3F");
      }
      absl::StatusOr<ResolvedPath> resolved;
      if (would_block == nullptr) {
        resolved = roots.Resolve(uri->path, uri_field);
      } else if (auto local = roots.ResolveWithoutBlocking(uri->path, uri_field)) {
        resolved = *std::move(local);
      } else {
        *would_block = true;
        return absl::OkStatus();
      }
      if (!resolved.ok()) return resolved.status();
      if (!S_ISREG(resolved->stat.st_mode)) {
        return Invalid(field, "uri",
                       absl::StrCat("\"", resolved->path, "\" is not a regular file"));
      }
      if (checked != nullptr) checked->Passed(cursor.uri());
      return absl::OkStatus();
    }
    case UriScheme::kS3:
      if (uri->key.empty()) return Invalid(field, "uri", "an s3 cursor needs s3://bucket/key");
      return absl::OkStatus();
    case UriScheme::kHttp:
    case UriScheme::kHttps:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateCursor(const eofaas::v1::DataCursor& cursor, const DataRoots& roots,
                            CheckedFiles* checked, absl::string_view field) {
  return Validate(cursor, roots, checked, field, nullptr);
}

std::optional<absl::Status> ValidateCursorWithoutBlocking(const eofaas::v1::DataCursor& cursor,
                                                          const DataRoots& roots,
                                                          CheckedFiles* checked,
                                                          absl::string_view field) {
  bool would_block = false;
  absl::Status status = Validate(cursor, roots, checked, field, &would_block);
  if (would_block) return std::nullopt;
  return status;
}

}  // namespace eofaas::proxy

// The URIs a Map input or an Invoke cursor may name (file://, http(s)://, s3://), parsed and
// checked before anything is listed or dispatched.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace eofaas::proxy {

enum class UriScheme { kFile, kHttp, kHttps, kS3 };

/// Longer URIs are rejected: they are copied into every cursor of an object.
inline constexpr size_t kMaxUriBytes = 8192;

/// A URI that passed ParseDataUri.
struct DataUri {
  UriScheme scheme = UriScheme::kFile;
  /// The URI as given.
  std::string text;

  /// kFile: the absolute path, percent-decoded. Not normalised: DataRoots resolves it.
  std::string path;
  /// kFile: true when the path holds a literal `*`, `?` or `[` (a glob; Map inputs only).
  /// Percent-encoded ones (%2A, %3F, %5B) are ordinary characters of a name.
  bool glob = false;
  /// kFile: `path` as an fnmatch(3) pattern: the raw glob characters keep their meaning, every
  /// other character is literal (escaped with a backslash where it would be special). Empty
  /// when `glob` is false.
  std::string pattern;

  /// kS3: the bucket and the key (the key may be empty: a whole bucket).
  std::string bucket;
  std::string key;
};

/// Parses `uri`. INVALID_ARGUMENT naming `field` (e.g. `inputs[2]: unsupported scheme "ftp"`)
/// for: no scheme, a scheme other than file, http, https, s3 (case-insensitive), control
/// characters, more than kMaxUriBytes bytes; file URIs that are not `file:///absolute/path` or
/// `file://localhost/absolute/path`, have a fragment, a bad percent escape or an encoded NUL;
/// http(s) URIs without a host, with credentials or with a bad port; s3 URIs with an invalid
/// bucket name. In file URIs `?` is part of the path (a glob character), not a query.
/// Never touches the file system or the network. Thread-safe.
absl::StatusOr<DataUri> ParseDataUri(absl::string_view uri, absl::string_view field);

/// Percent-encodes a path for a file:// URI: keeps `/`, letters, digits and `-._~!$&'()+,;=:@`,
/// encodes every other byte (so `*`, `?`, `[`, `#`, `%` and spaces never reach a URI raw).
std::string EncodePath(absl::string_view path);

/// The file:// URI of an absolute path: "file://" + EncodePath(path).
std::string FileUri(absl::string_view path);

}  // namespace eofaas::proxy

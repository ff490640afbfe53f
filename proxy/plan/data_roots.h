// Data roots: the only local directories file:// cursors and Map inputs may name. Paths are
// resolved like realpath(3), but containment is checked before each component is touched, so
// nothing outside the roots is ever stat'ed, read as a link or listed.
#pragma once

#include <sys/stat.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace eofaas::proxy {

/// A path inside the data roots, resolved.
struct ResolvedPath {
  /// Canonical absolute path: no symlinks, no ".", ".." or empty components.
  std::string path;
  /// lstat(2) of `path` (never a symlink).
  struct stat stat = {};
};

/// Immutable after Create; thread-safe. Copyable.
class DataRoots {
 public:
  /// Canonicalises each root with realpath(3). INVALID_ARGUMENT for a relative root or one that
  /// is not a directory; the errno's code (NOT_FOUND, PERMISSION_DENIED, ...) when realpath fails.
  /// No roots is allowed: then every local path is denied.
  static absl::StatusOr<DataRoots> Create(const std::vector<std::string>& roots);

  /// The canonical roots, sorted, without duplicates.
  const std::vector<std::string>& roots() const { return roots_; }

  /// True when the canonical path `path` is a root or lies below one.
  bool Contains(absl::string_view path) const;

  /// Resolves the absolute `path` component by component, following symlinks (at most 40).
  /// A component is only lstat'ed or read as a link once its canonical path lies inside a root;
  /// the roots' ancestors (as given and canonical) are known from Create and never touched.
  /// Errors name `field`: PERMISSION_DENIED when the path, through "..", a symlink or not, leads
  /// outside every root; NOT_FOUND when a component does not exist or is not a directory;
  /// INVALID_ARGUMENT for a relative path or a symlink loop; other errno codes as they come.
  absl::StatusOr<ResolvedPath> Resolve(absl::string_view path, absl::string_view field) const;

 private:
  DataRoots() = default;

  std::vector<std::string> roots_;
  /// The paths that lead to the roots (their ancestors, canonical and as given, and the roots as
  /// given), mapped to canonical paths at start-up. The resolver passes the ones outside every
  /// root by this map, without touching them; inside a root it always asks the file system.
  std::map<std::string, std::string, std::less<>> known_;
};

}  // namespace eofaas::proxy

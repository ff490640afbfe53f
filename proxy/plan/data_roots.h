// Data roots: the only local directories file:// cursors and Map inputs may name. Paths are
// resolved like realpath(3), but containment is checked before each component is touched, so
// nothing outside the roots is ever stat'ed, read as a link or listed.
#pragma once

#include <sys/stat.h>

#include <map>
#include <optional>
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
  /// Create with the mount table given (the text of /proc/self/mountinfo) rather than read.
  static absl::StatusOr<DataRoots> Create(const std::vector<std::string>& roots,
                                          absl::string_view mountinfo);

  /// The canonical roots, sorted, without duplicates.
  const std::vector<std::string>& roots() const { return roots_; }

  /// True when the canonical path `path` is a root or lies below one.
  bool Contains(absl::string_view path) const;

  /// Resolves the absolute `path` component by component, following symlinks (at most 40).
  /// A component is only lstat'ed or read as a link once its canonical path lies inside a root;
  /// the roots' ancestors (as given and canonical) are known from Create and never touched.
  /// Errors name `field`: PERMISSION_DENIED when the path, through "..", a symlink or not, leads
  /// outside every root; NOT_FOUND when a component does not exist or is not a directory (the
  /// last one too when the path ends with a slash);
  /// INVALID_ARGUMENT for a relative path or a symlink loop; other errno codes as they come.
  absl::StatusOr<ResolvedPath> Resolve(absl::string_view path, absl::string_view field) const;

  /// Resolve for a thread that must not wait (an event loop): nullopt, before anything that may
  /// block was touched, when the path leads onto a file system where lstat may wait for a server
  /// (see MayBlock); Resolve on a worker thread then. On local file systems the few lstat and
  /// readlink calls take microseconds, far less than handing the work to another thread.
  std::optional<absl::StatusOr<ResolvedPath>> ResolveWithoutBlocking(absl::string_view path,
                                                                     absl::string_view field) const;

  /// True when the canonical `path` lies on a file system that is not known to be local (NFS,
  /// SMB, FUSE, ...), or is reached through one, as the mount table said at Create: a root on
  /// one, or a mount of one below a root (see PathsThatMayBlock). Every root counts when the
  /// mount table cannot be read.
  bool MayBlock(absl::string_view path) const;

 private:
  DataRoots() = default;

  absl::StatusOr<ResolvedPath> Resolve(absl::string_view path, absl::string_view field,
                                       bool* would_block) const;

  std::vector<std::string> roots_;
  /// The paths that lead to the roots (their ancestors, canonical and as given, and the roots as
  /// given), mapped to canonical paths at start-up. The resolver passes the ones outside every
  /// root by this map, without touching them; inside a root it always asks the file system.
  std::map<std::string, std::string, std::less<>> known_;
  /// Canonical paths (roots and mount points below them) under which lstat may block.
  std::vector<std::string> may_block_;
};

/// The paths under which lstat may wait for a server, given canonical `roots` and the mount table
/// (the text of /proc/self/mountinfo): each root that is on, or below a mount point of, a file
/// system of a type not known to be local, and each such mount point below a root. Local types
/// are disk and memory file systems (ext4, xfs, btrfs, tmpfs, overlay, ...).
std::vector<std::string> PathsThatMayBlock(const std::vector<std::string>& roots,
                                           absl::string_view mountinfo);

}  // namespace eofaas::proxy

// FileLister: lists file:// inputs (a file, a directory recursively, or a glob) inside the data
// roots, with lstat and readdir only.
#pragma once

#include "proxy/plan/data_roots.h"
#include "proxy/plan/lister.h"

namespace eofaas::proxy {

/// Lists what a file:// input names, files only:
/// - a file: itself;
/// - a directory: every file below it, hidden ones included. Subdirectories are walked through
///   descriptors opened with O_NOFOLLOW; a symlink to a file is listed under its own name, a
///   symlink to a directory is not followed (no cycles, no duplicates), a dangling symlink and
///   anything that is not a regular file are skipped. A directory more than 64 levels below the
///   input fails the listing with FAILED_PRECONDITION;
/// - a glob (`*`, `?`, `[...]` in any component, matched per component by fnmatch(3) as glob(3)
///   does: a leading '.' must be matched explicitly): the matching files. The components before
///   the first wildcard must name a directory inside a root; symlinks are followed while they
///   stay inside the roots. INVALID_ARGUMENT for "." or ".." after the first wildcard (entries
///   never match them) and for more than 65 components from it on.
/// Every symlink met is resolved by DataRoots before its target is touched: one that leads
/// outside every root fails the listing with PERMISSION_DENIED naming the field (it is never
/// silently skipped). URIs name canonical directories; objects are sorted by URI. Etags are
/// "<mtime in ns>-<size>" in hex, the mtime signed ("-" before 1970); ranges are always
/// supported.
/// Holds no state of its own between calls; thread-safe.
class FileLister final : public Lister {
 public:
  explicit FileLister(DataRoots roots) : roots_(std::move(roots)) {}

  /// INVALID_ARGUMENT for a non-file URI or a path that is neither a file nor a directory.
  absl::Status List(const DataUri& input, absl::string_view field, const std::stop_token& stop,
                    ObjectList& out) const override;

 private:
  DataRoots roots_;
};

}  // namespace eofaas::proxy

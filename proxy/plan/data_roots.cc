#include "proxy/plan/data_roots.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <list>
#include <memory>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace eofaas::proxy {
namespace {

constexpr int kMaxSymlinks = 40;

std::string Join(absl::string_view dir, absl::string_view name) {
  return dir == "/" ? absl::StrCat("/", name) : absl::StrCat(dir, "/", name);
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// Every ancestor of an absolute, normalised path, from "/" down, and the path itself.
std::vector<std::string> Prefixes(const std::string& path) {
  std::vector<std::string> prefixes = {"/"};
  std::string current = "/";
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    current = Join(current, part);
    prefixes.push_back(current);
  }
  return prefixes;
}

absl::StatusOr<std::string> RealPath(const std::string& path) {
  std::unique_ptr<char, decltype(&free)> real(realpath(path.c_str(), nullptr), &free);
  if (real == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("data root ", path));
  return std::string(real.get());
}

absl::Status Denied(absl::string_view field, absl::string_view path, absl::string_view link) {
  std::string through = link.empty() ? "" : absl::StrCat(" (through the symlink \"", link, "\")");
  return absl::PermissionDeniedError(
      absl::StrCat(field, ": \"", path, "\" is outside every data root", through));
}

// True when the canonical `path` is `dir` or lies below it.
bool IsUnder(absl::string_view path, absl::string_view dir) {
  return dir == "/" || path == dir ||
         (absl::StartsWith(path, dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

// File systems whose lstat and readlink answer from memory or a local disk. Anything else
// (nfs, cifs, fuse.*, ceph, 9p, autofs, ...) may wait for a server, for ever on a hard mount.
bool IsLocalFileSystem(absl::string_view type) {
  static constexpr absl::string_view kLocal[] = {
      "ext2",     "ext3",     "ext4",       "xfs",   "btrfs",  "f2fs",      "jfs",
      "zfs",      "bcachefs", "nilfs2",     "vfat",  "msdos",  "exfat",     "ntfs3",
      "udf",      "iso9660",  "squashfs",   "erofs", "tmpfs",  "ramfs",     "overlay",
      "rootfs",   "devtmpfs", "proc",       "sysfs", "devpts", "cgroup",    "cgroup2",
      "mqueue",   "tracefs",  "debugfs",    "bpf",   "pstore", "hugetlbfs", "securityfs",
      "configfs", "efivarfs", "binfmt_misc"};
  return std::find(std::begin(kLocal), std::end(kLocal), type) != std::end(kLocal);
}

// A mount point as /proc/self/mountinfo writes it: space, tab, newline and backslash as \ooo.
std::string UnescapeMountPoint(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' &&
        text[i + 2] >= '0' && text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
      out.push_back(static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                                      (text[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> PathsThatMayBlock(const std::vector<std::string>& roots,
                                           absl::string_view mountinfo) {
  std::vector<std::string> paths;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw": the mount point is
    // the fifth field, the type the first after the lone "-".
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto separator = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || separator == fields.end() || std::next(separator) == fields.end() ||
        IsLocalFileSystem(*std::next(separator))) {
      continue;
    }
    const std::string mount_point = UnescapeMountPoint(fields[4]);
    for (const std::string& root : roots) {
      if (IsUnder(root, mount_point)) {
        paths.push_back(root);  // on that file system, or reached through it
      } else if (IsUnder(mount_point, root)) {
        paths.push_back(mount_point);
      }
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

absl::StatusOr<DataRoots> DataRoots::Create(const std::vector<std::string>& roots) {
  std::ifstream mounts("/proc/self/mountinfo");
  if (!mounts) {
    // Unknown: no root is assumed to answer at once.
    absl::StatusOr<DataRoots> result = Create(roots, "");
    if (result.ok()) result->may_block_ = result->roots_;
    return result;
  }
  return Create(roots, std::string(std::istreambuf_iterator<char>(mounts), {}));
}

absl::StatusOr<DataRoots> DataRoots::Create(const std::vector<std::string>& roots,
                                            absl::string_view mountinfo) {
  DataRoots result;
  for (const std::string& root : roots) {
    if (!absl::StartsWith(root, "/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("data root \"", root, "\" must be an absolute path"));
    }
    absl::StatusOr<std::string> real = RealPath(root);
    if (!real.ok()) return real.status();
    struct stat st;
    if (stat(real->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat("data root \"", root, "\" is not a directory"));
    }
    for (const std::string& prefix : Prefixes(*real)) result.known_[prefix] = prefix;
    std::string given = std::filesystem::path(root).lexically_normal().string();
    for (const std::string& prefix : Prefixes(given)) {
      if (result.known_.count(prefix) != 0) continue;
      absl::StatusOr<std::string> canonical = RealPath(prefix);
      if (!canonical.ok()) return canonical.status();
      result.known_[prefix] = *canonical;
    }
    result.roots_.push_back(*real);
  }
  std::sort(result.roots_.begin(), result.roots_.end());
  result.roots_.erase(std::unique(result.roots_.begin(), result.roots_.end()), result.roots_.end());
  result.may_block_ = PathsThatMayBlock(result.roots_, mountinfo);
  return result;
}

bool DataRoots::MayBlock(absl::string_view path) const {
  for (const std::string& slow : may_block_) {
    if (IsUnder(path, slow)) return true;
  }
  return false;
}

bool DataRoots::Contains(absl::string_view path) const {
  for (const std::string& root : roots_) {
    if (root == "/" || path == root) return true;
    if (absl::StartsWith(path, root) && path.size() > root.size() && path[root.size()] == '/') {
      return true;
    }
  }
  return false;
}

absl::StatusOr<ResolvedPath> DataRoots::Resolve(absl::string_view path,
                                                absl::string_view field) const {
  return Resolve(path, field, nullptr);
}

std::optional<absl::StatusOr<ResolvedPath>> DataRoots::ResolveWithoutBlocking(
    absl::string_view path, absl::string_view field) const {
  bool would_block = false;
  absl::StatusOr<ResolvedPath> resolved = Resolve(path, field, &would_block);
  if (would_block) return std::nullopt;
  return resolved;
}

// With `would_block` set, nothing MayBlock is touched: the walk stops there, *would_block true.
absl::StatusOr<ResolvedPath> DataRoots::Resolve(absl::string_view path, absl::string_view field,
                                                bool* would_block) const {
  auto stop_before = [&](const std::string& next) {
    if (would_block == nullptr || !MayBlock(next)) return false;
    *would_block = true;
    return true;
  };
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", path, "\" is not absolute"));
  }
  // Components still to walk, the next one last. They view `path` or the symlink targets met.
  absl::InlinedVector<absl::string_view, 16> pending;
  std::list<std::string> link_targets;  // allocates nothing while empty
  auto push_components = [&pending](absl::string_view text) {
    const size_t first = pending.size();
    for (absl::string_view part : absl::StrSplit(text, '/', absl::SkipEmpty())) {
      pending.push_back(part);
    }
    std::reverse(pending.begin() + first, pending.end());
  };
  push_components(path);

  ResolvedPath result;
  result.path = "/";  // canonical at every step
  bool have_stat = false;
  int links = 0;
  std::string last_link;
  std::string next;
  while (!pending.empty()) {
    const absl::string_view component = pending.back();
    pending.pop_back();
    if (component == ".") continue;
    have_stat = false;
    if (component == "..") {
      result.path = Parent(result.path);
      continue;
    }
    next.assign(result.path);
    if (next != "/") next.push_back('/');
    next.append(component.data(), component.size());
    if (!Contains(next)) {
      // Outside the roots only their ancestors may be passed, by what Create learned of them.
      auto known = known_.find(next);
      if (known == known_.end()) return Denied(field, path, last_link);
      result.path = known->second;
      continue;
    }
    if (stop_before(next)) return absl::UnavailableError("the check would block");
    if (lstat(next.c_str(), &result.stat) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat(field, ": \"", next, "\""));
    }
    if (S_ISLNK(result.stat.st_mode)) {
      if (++links > kMaxSymlinks) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": too many levels of symbolic links in \"", path, "\""));
      }
      char target[PATH_MAX];
      ssize_t size = readlink(next.c_str(), target, sizeof(target));
      if (size < 0) return absl::ErrnoToStatus(errno, absl::StrCat(field, ": \"", next, "\""));
      if (static_cast<size_t>(size) == sizeof(target)) {
        return absl::InvalidArgumentError(absl::StrCat(field, ": link \"", next, "\" too long"));
      }
      const std::string& target_text = link_targets.emplace_back(target, size);
      if (absl::StartsWith(target_text, "/")) result.path = "/";
      push_components(target_text);
      last_link = next;
      continue;
    }
    if (!S_ISDIR(result.stat.st_mode) && !pending.empty()) {
      return absl::NotFoundError(absl::StrCat(field, ": \"", next, "\" is not a directory"));
    }
    result.path.swap(next);
    have_stat = true;
  }
  if (!Contains(result.path)) return Denied(field, path, last_link);
  if (!have_stat && stop_before(result.path)) {
    return absl::UnavailableError("the check would block");
  }
  if (!have_stat && lstat(result.path.c_str(), &result.stat) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(field, ": \"", result.path, "\""));
  }
  // A trailing slash names a directory, as a trailing "/." does (the walk above checks that).
  if (path.size() > 1 && path.back() == '/' && !S_ISDIR(result.stat.st_mode)) {
    return absl::NotFoundError(absl::StrCat(field, ": \"", result.path, "\" is not a directory"));
  }
  return result;
}

}  // namespace eofaas::proxy

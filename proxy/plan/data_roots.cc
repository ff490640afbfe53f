#include "proxy/plan/data_roots.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>

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

}  // namespace

absl::StatusOr<DataRoots> DataRoots::Create(const std::vector<std::string>& roots) {
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
  return result;
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
  if (!absl::StartsWith(path, "/")) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", path, "\" is not absolute"));
  }
  // Components still to walk, the next one last.
  std::vector<std::string> pending;
  auto push_components = [&pending](absl::string_view text) {
    std::vector<std::string> parts = absl::StrSplit(text, '/', absl::SkipEmpty());
    pending.insert(pending.end(), parts.rbegin(), parts.rend());
  };
  push_components(path);

  ResolvedPath result;
  result.path = "/";  // canonical at every step
  bool have_stat = false;
  int links = 0;
  std::string last_link;
  while (!pending.empty()) {
    std::string component = std::move(pending.back());
    pending.pop_back();
    if (component == ".") continue;
    have_stat = false;
    if (component == "..") {
      result.path = Parent(result.path);
      continue;
    }
    std::string next = Join(result.path, component);
    if (!Contains(next)) {
      // Outside the roots only their ancestors may be passed, by what Create learned of them.
      auto known = known_.find(next);
      if (known == known_.end()) return Denied(field, path, last_link);
      result.path = known->second;
      continue;
    }
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
      absl::string_view target_view(target, size);
      if (absl::StartsWith(target_view, "/")) result.path = "/";
      push_components(target_view);
      last_link = next;
      continue;
    }
    if (!S_ISDIR(result.stat.st_mode) && !pending.empty()) {
      return absl::NotFoundError(absl::StrCat(field, ": \"", next, "\" is not a directory"));
    }
    result.path = std::move(next);
    have_stat = true;
  }
  if (!Contains(result.path)) return Denied(field, path, last_link);
  if (!have_stat && lstat(result.path.c_str(), &result.stat) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(field, ": \"", result.path, "\""));
  }
  return result;
}

}  // namespace eofaas::proxy

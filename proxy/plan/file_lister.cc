#include "proxy/plan/file_lister.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace eofaas::proxy {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

constexpr int kOpenDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// Levels of directories a walk descends below its input at most (a glob: components after its
// first wildcard). Each level holds an open directory and a frame of the walk's recursion, so
// this bounds both; real data sets nest far less deeply.
constexpr int kMaxDepth = 64;

std::string Join(absl::string_view dir, absl::string_view name) {
  return dir == "/" ? absl::StrCat("/", name) : absl::StrCat(dir, "/", name);
}

// "<mtime in ns>-<size>", in hex with a sign as the templates print them (Python's `x` format,
// JavaScript's BigInt toString(16)): an mtime before 1970 is negative, one after 2262 does not
// fit in 64 bits.
std::string FileEtag(const struct stat& st) {
  const __int128 mtime_ns = __int128{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  unsigned __int128 magnitude = mtime_ns < 0 ? -static_cast<unsigned __int128>(mtime_ns)
                                             : static_cast<unsigned __int128>(mtime_ns);
  char digits[40];
  char* first = digits + sizeof(digits);
  do {
    *--first = "0123456789abcdef"[static_cast<int>(magnitude & 0xf)];
    magnitude >>= 4;
  } while (magnitude != 0);
  if (mtime_ns < 0) *--first = '-';
  return absl::StrCat(absl::string_view(first, digits + sizeof(digits) - first), "-",
                      absl::Hex(st.st_size));
}

// True when a component of an fnmatch pattern holds an unescaped wildcard.
bool HasWildcard(absl::string_view component) {
  for (size_t i = 0; i < component.size(); ++i) {
    if (component[i] == '\\') {
      ++i;
    } else if (component[i] == '*' || component[i] == '?' || component[i] == '[') {
      return true;
    }
  }
  return false;
}

// One listing of one input: appends the files it finds to `out`.
class Walk {
 public:
  Walk(const DataRoots& roots, absl::string_view field, const std::stop_token& stop,
       ObjectList& out)
      : roots_(roots), field_(field), stop_(stop), out_(out) {}

  void AddFile(const std::string& dir, absl::string_view name, const struct stat& st,
               std::optional<uint32_t>& prefix) {
    if (!prefix) prefix = out_.AddPrefix(dir == "/" ? "file:///" : FileUri(dir) + "/");
    out_.Append(*prefix, EncodePath(name), st.st_size, FileEtag(st), true);
  }

  // Opens the directory `path` for a walk: by its name in `parent` when given, with O_NOFOLLOW
  // (a symlink swapped in meanwhile is not followed), else by the path itself (a root, or a
  // target DataRoots resolved). NOT_FOUND when it is gone; other errors name `path`.
  absl::StatusOr<DirPtr> Open(const std::string& path, DIR* parent = nullptr,
                              const char* name = nullptr) const {
    const int fd = parent != nullptr ? openat(dirfd(parent), name, kOpenDirFlags)
                                     : open(path.c_str(), kOpenDirFlags);
    if (fd < 0) return Error(path);
    DirPtr dir(fdopendir(fd));
    if (dir == nullptr) {
      const int error = errno;
      close(fd);
      errno = error;
      return Error(path);
    }
    return dir;
  }

  // Every file below the directory `path` (canonical, inside a root, `depth` levels below the
  // input), which `dir` is open on.
  absl::Status Directory(DirPtr dir, const std::string& path, int depth = 0) {
    std::optional<uint32_t> prefix;
    return ForEachEntry(dir.get(), path,
                        [&](const char* name, const struct stat& st,
                            const std::string* link_target) -> absl::Status {
                          if (S_ISREG(st.st_mode)) {
                            AddFile(path, name, st, prefix);
                          } else if (S_ISDIR(st.st_mode) && link_target == nullptr) {
                            const std::string child_path = Join(path, name);
                            if (depth == kMaxDepth) return TooDeep(child_path);
                            absl::StatusOr<DirPtr> child = Open(child_path, dir.get(), name);
                            if (!child.ok()) return Skippable(child.status());
                            return Directory(*std::move(child), child_path, depth + 1);
                          }
                          return absl::OkStatus();
                        });
  }

  // The files matching `pattern[index..]` below the directory `path` (canonical, inside a root),
  // which `dir` is open on. A symlink to a subdirectory is followed to the target DataRoots
  // resolved. A directory already globbed at this index is not again: its files would come twice,
  // and symlinks that loop would make paths without end.
  absl::Status Glob(DirPtr dir, const std::string& path, const std::vector<std::string>& pattern,
                    size_t index) {
    struct stat st;
    if (fstat(dirfd(dir.get()), &st) != 0) return Error(path);
    if (!globbed_.emplace(st.st_dev, st.st_ino, index).second) return absl::OkStatus();
    const bool last = index + 1 == pattern.size();
    std::optional<uint32_t> prefix;
    return ForEachEntry(
        dir.get(), path,
        [&](const char* name, const struct stat& st,
            const std::string* link_target) -> absl::Status {
          if (last && S_ISREG(st.st_mode)) {
            AddFile(path, name, st, prefix);
          } else if (!last && S_ISDIR(st.st_mode)) {
            const std::string child_path = link_target ? *link_target : Join(path, name);
            absl::StatusOr<DirPtr> child =
                link_target ? Open(child_path) : Open(child_path, dir.get(), name);
            if (!child.ok()) return Skippable(child.status());
            return Glob(*std::move(child), child_path, pattern, index + 1);
          }
          return absl::OkStatus();
        },
        pattern[index].c_str());
  }

 private:
  // Calls visit(name, stat, link_target) for each entry of `dir` (matching `pattern` when set).
  // A symlink is resolved within the roots first: visit gets its target's stat and canonical
  // path; a dangling one is skipped; one leading outside the roots ends the walk, as does a
  // requested stop.
  template <typename Visit>
  absl::Status ForEachEntry(DIR* dir, const std::string& path, const Visit& visit,
                            const char* pattern = nullptr) {
    while (true) {
      if (stop_.stop_requested()) {
        return absl::CancelledError(absl::StrCat(field_, ": listing was cancelled"));
      }
      errno = 0;
      struct dirent* entry = readdir(dir);
      if (entry == nullptr) return errno == 0 ? absl::OkStatus() : Error(path);
      const char* name = entry->d_name;
      if (absl::string_view(name) == "." || absl::string_view(name) == "..") continue;
      if (pattern != nullptr && fnmatch(pattern, name, FNM_PERIOD) != 0) continue;
      struct stat st;
      if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed while we list
        return Error(Join(path, name));
      }
      absl::Status status;
      if (S_ISLNK(st.st_mode)) {
        absl::StatusOr<ResolvedPath> target = roots_.Resolve(Join(path, name), field_);
        if (absl::IsNotFound(target.status())) continue;
        if (!target.ok()) return target.status();
        status = visit(name, target->stat, &target->path);
      } else {
        status = visit(name, st, nullptr);
      }
      if (!status.ok()) return status;
    }
  }

  absl::Status TooDeep(const std::string& path) const {
    return absl::FailedPreconditionError(
        absl::StrCat(field_, ": \"", path, "\" is more than ", kMaxDepth,
                     " directories below the input; name a directory nearer to it as an input"));
  }

  // A subdirectory removed while we list is skipped.
  static absl::Status Skippable(const absl::Status& status) {
    return absl::IsNotFound(status) ? absl::OkStatus() : status;
  }

  absl::Status Error(const std::string& path) const {
    return absl::ErrnoToStatus(errno, absl::StrCat(field_, ": \"", path, "\""));
  }

  const DataRoots& roots_;
  absl::string_view field_;
  const std::stop_token& stop_;
  ObjectList& out_;
  absl::flat_hash_set<std::tuple<dev_t, ino_t, size_t>> globbed_;  // directories, pattern index
};

}  // namespace

absl::Status FileLister::List(const DataUri& input, absl::string_view field,
                              const std::stop_token& stop, ObjectList& out) const {
  if (input.scheme != UriScheme::kFile) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not a file:// URI"));
  }
  const size_t begin = out.size();
  Walk walk(roots_, field, stop, out);
  if (input.glob) {
    std::vector<std::string> path = absl::StrSplit(input.path, '/', absl::SkipEmpty());
    std::vector<std::string> pattern = absl::StrSplit(input.pattern, '/', absl::SkipEmpty());
    size_t first = 0;
    while (!HasWildcard(pattern[first])) ++first;
    // Matched against directory entries, "." and ".." would never match; they would only hide
    // where the glob leads.
    for (size_t i = first + 1; i < pattern.size(); ++i) {
      if (pattern[i] == "." || pattern[i] == "..") {
        return absl::InvalidArgumentError(absl::StrCat(field, ": a glob may not hold \"",
                                                       pattern[i], "\" after its first wildcard"));
      }
    }
    if (pattern.size() - first > kMaxDepth + 1) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": a glob may have at most ",
                                                     kMaxDepth + 1,
                                                     " components from its first wildcard on"));
    }
    std::string base = "/";
    for (size_t i = 0; i < first; ++i) base = Join(base, path[i]);
    absl::StatusOr<ResolvedPath> dir = roots_.Resolve(base, field);
    if (!dir.ok()) return dir.status();
    if (!S_ISDIR(dir->stat.st_mode)) {
      return absl::NotFoundError(absl::StrCat(field, ": \"", base, "\" is not a directory"));
    }
    absl::StatusOr<DirPtr> opened = walk.Open(dir->path);
    if (!opened.ok()) return opened.status();
    if (absl::Status status = walk.Glob(*std::move(opened), dir->path, pattern, first);
        !status.ok()) {
      return status;
    }
    if (out.size() == begin) {
      return absl::NotFoundError(absl::StrCat(field, ": \"", input.text, "\" matches no files"));
    }
  } else {
    absl::StatusOr<ResolvedPath> resolved = roots_.Resolve(input.path, field);
    if (!resolved.ok()) return resolved.status();
    const std::string& path = resolved->path;
    if (S_ISREG(resolved->stat.st_mode)) {
      size_t slash = path.rfind('/');
      std::optional<uint32_t> prefix;
      walk.AddFile(slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1), resolved->stat,
                   prefix);
      return absl::OkStatus();
    }
    if (!S_ISDIR(resolved->stat.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": \"", path, "\" is neither a regular file nor a directory"));
    }
    absl::StatusOr<DirPtr> opened = walk.Open(path);
    if (!opened.ok()) return opened.status();
    if (absl::Status status = walk.Directory(*std::move(opened), path); !status.ok()) return status;
    if (out.size() == begin) {
      return absl::NotFoundError(absl::StrCat(field, ": directory \"", path, "\" has no files"));
    }
  }
  out.SortFrom(begin);
  return absl::OkStatus();
}

}  // namespace eofaas::proxy

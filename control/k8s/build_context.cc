// The build context of a bundle as a reproducible .tar.gz: ustar entries in path order, with
// fixed owner, modes and time, compressed with zlib.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/k8s/render.h"

namespace eofaas::control::k8s {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBlock = 512;

struct Entry {
  std::string path;  // relative, '/'-separated; directories end with '/'
  bool directory = false;
  bool executable = false;
  fs::path source;
};

// Writes `value` as a zero-padded octal number of width-1 digits and a NUL.
void Octal(char* field, size_t width, uint64_t value) {
  std::string digits = absl::StrFormat("%0*o", static_cast<int>(width - 1), value);
  std::memcpy(field, digits.data(), width - 1);
  field[width - 1] = '\0';
}

// Splits `path` into the ustar header's prefix (up to 155 bytes) and name (up to 100).
bool SplitPath(const std::string& path, std::string* prefix, std::string* name) {
  if (path.size() <= 100) {
    *name = path;
    return true;
  }
  // The name part may not be empty; a directory's trailing '/' stays with its name.
  for (size_t slash = path.find('/'); slash != std::string::npos && slash + 1 < path.size();
       slash = path.find('/', slash + 1)) {
    if (slash <= 155 && path.size() - slash - 1 <= 100) {
      *prefix = path.substr(0, slash);
      *name = path.substr(slash + 1);
      return true;
    }
  }
  return false;
}

absl::Status AppendHeader(const Entry& entry, uint64_t size, std::string& tar) {
  std::string prefix, name;
  if (!SplitPath(entry.path, &prefix, &name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("build context: \"", entry.path, "\" is too long for a tar header"));
  }
  std::array<char, kBlock> header{};
  std::memcpy(&header[0], name.data(), name.size());
  Octal(&header[100], 8, entry.directory || entry.executable ? 0755 : 0644);
  Octal(&header[108], 8, 0);  // uid
  Octal(&header[116], 8, 0);  // gid
  Octal(&header[124], 12, size);
  Octal(&header[136], 12, 0);  // mtime
  header[156] = entry.directory ? '5' : '0';
  std::memcpy(&header[257], "ustar", 6);
  std::memcpy(&header[263], "00", 2);
  std::memcpy(&header[345], prefix.data(), prefix.size());
  // The checksum counts its own field as eight spaces.
  std::memset(&header[148], ' ', 8);
  unsigned checksum = 0;
  for (char c : header) checksum += static_cast<unsigned char>(c);
  Octal(&header[148], 7, checksum);
  header[155] = ' ';
  tar.append(header.data(), header.size());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Entry>> ListEntries(const fs::path& root) {
  std::vector<Entry> entries;
  std::error_code error;
  for (fs::recursive_directory_iterator it(root, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().filename() == "__pycache__") {
      it.disable_recursion_pending();
      continue;
    }
    Entry entry;
    entry.path = it->path().lexically_relative(root).generic_string();
    entry.source = it->path();
    if (it->is_directory(error)) {
      entry.directory = true;
      entry.path += '/';
    } else if (it->is_regular_file(error)) {
      entry.executable =
          (it->status(error).permissions() & fs::perms::owner_exec) != fs::perms::none;
    } else {
      continue;  // sockets and the like have no place in an image
    }
    entries.push_back(std::move(entry));
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("build context: cannot list ", root.string(), ": ", error.message()));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  return entries;
}

absl::StatusOr<std::string> Gzip(const std::string& data) {
  z_stream stream{};
  // 15 bits of window, +16 for a gzip header (no name, time 0).
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return absl::InternalError("build context: zlib cannot start compressing");
  }
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) return absl::InternalError("build context: zlib failed");
  return out;
}

}  // namespace

absl::StatusOr<std::string> ArchiveBuildContext(const std::string& bundle_dir) {
  const fs::path root(bundle_dir);
  std::error_code error;
  if (!fs::is_regular_file(root / "Dockerfile", error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("build context: ", bundle_dir, " has no Dockerfile"));
  }
  auto entries = ListEntries(root);
  if (!entries.ok()) return entries.status();
  std::string tar;
  for (const Entry& entry : *entries) {
    std::string content;
    if (!entry.directory) {
      std::ifstream in(entry.source, std::ios::binary);
      if (!in.is_open()) {
        return absl::FailedPreconditionError(
            absl::StrCat("build context: cannot read ", entry.source.string()));
      }
      content.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (auto status = AppendHeader(entry, content.size(), tar); !status.ok()) return status;
    tar += content;
    tar.append((kBlock - content.size() % kBlock) % kBlock, '\0');
  }
  tar.append(2 * kBlock, '\0');  // end of archive
  return Gzip(tar);
}

}  // namespace eofaas::control::k8s

#include "control/k8s/client/token_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace eofaas::control::k8s {

TokenFile::TokenFile(std::string path, absl::Duration reload_after, const common::Clock& clock)
    : path_(std::move(path)), reload_after_(reload_after), clock_(clock) {}

absl::StatusOr<std::string> TokenFile::Get() {
  absl::MutexLock lock(&mutex_);
  if (token_.empty() || clock_.Now() - read_at_ >= absl::ToChronoNanoseconds(reload_after_)) {
    absl::Status read = ReadLocked();
    if (!read.ok()) {
      if (token_.empty()) return read;
      common::LogWarning("keeping the last token: ", read.message());
    }
  }
  return token_;
}

bool TokenFile::Reload() {
  absl::MutexLock lock(&mutex_);
  const std::string before = token_;
  absl::Status read = ReadLocked();
  if (!read.ok()) common::LogWarning("keeping the last token: ", read.message());
  return token_ != before;
}

absl::Status TokenFile::ReadLocked() {
  std::ifstream in(path_, std::ios::binary);
  std::ostringstream content;
  if (in) content << in.rdbuf();
  const std::string token(absl::StripAsciiWhitespace(content.str()));
  read_at_ = clock_.Now();  // a failed read is tried again after the same interval
  if (!in || token.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("token file ", path_, ": ", in ? "empty" : strerror(errno)));
  }
  token_ = token;
  return absl::OkStatus();
}

}  // namespace eofaas::control::k8s

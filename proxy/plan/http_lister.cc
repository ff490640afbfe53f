#include "proxy/plan/http_lister.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace eofaas::proxy {
namespace {

struct CurlCleanup {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

// The value of the last response's header `name`, when it has one.
std::optional<std::string> Header(CURL* curl, const char* name) {
  struct curl_header* header = nullptr;
  if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &header) != CURLHE_OK) return std::nullopt;
  return std::string(header->value);
}

bool AcceptsByteRanges(CURL* curl) {
  struct curl_header* header = nullptr;
  if (curl_easy_header(curl, "Accept-Ranges", 0, CURLH_HEADER, -1, &header) != CURLHE_OK) {
    return false;
  }
  for (size_t i = 0; i < header->amount; ++i) {
    if (i > 0 &&
        curl_easy_header(curl, "Accept-Ranges", i, CURLH_HEADER, -1, &header) != CURLHE_OK) {
      return false;
    }
    for (absl::string_view unit : absl::StrSplit(header->value, ',')) {
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(unit), "bytes")) return true;
    }
  }
  return false;
}

absl::Status TransferError(CURLcode code, absl::string_view field, absl::string_view uri,
                           const char* detail) {
  std::string message =
      absl::StrCat(field, ": HEAD ", uri, ": ", *detail ? detail : curl_easy_strerror(code));
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return absl::FailedPreconditionError(message);
    default:
      return absl::UnavailableError(message);
  }
}

absl::Status HttpError(long code, absl::string_view field, absl::string_view uri) {
  std::string message = absl::StrCat(field, ": HEAD ", uri, " answered ", code);
  if (code == 404 || code == 410) return absl::NotFoundError(message);
  if (code == 401 || code == 403) return absl::PermissionDeniedError(message);
  if (code == 429 || code >= 500) return absl::UnavailableError(message);
  return absl::FailedPreconditionError(message);
}

}  // namespace

HttpLister::HttpLister(HttpListerOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::Status HttpLister::List(const DataUri& input, absl::string_view field,
                              ObjectList& out) const {
  if (input.scheme != UriScheme::kHttp && input.scheme != UriScheme::kHttps) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not an http(s):// URI"));
  }
  std::unique_ptr<CURL, CurlCleanup> curl(curl_easy_init());
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  char error[CURL_ERROR_SIZE] = "";
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options_.timeout));
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, input.text.c_str());
  curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "eofaas-proxy");
  if (!options_.ca_file.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
  if (CURLcode code = curl_easy_perform(handle); code != CURLE_OK) {
    return TransferError(code, field, input.text, error);
  }
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) return HttpError(status, field, input.text);

  ListedObject object;
  object.uri = input.text;
  curl_off_t length = -1;
  curl_easy_getinfo(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  if (length >= 0) object.size = static_cast<int64_t>(length);
  object.etag = Header(handle, "ETag").value_or("");
  object.ranges_supported = AcceptsByteRanges(handle);
  out.Append(object);
  return absl::OkStatus();
}

}  // namespace eofaas::proxy

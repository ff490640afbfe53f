#include "proxy/plan/http_lister.h"

#include <curl/curl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
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

// The request that sizes an object: HEAD, or, for a store that refuses HEAD, a GET of the first
// byte whose body is cut off unread.
enum class Probe { kHead, kFirstByte };

// What one probe learnt: a transfer failure (`error`), or the server's `status` and what its
// headers say of the object.
struct Answer {
  absl::Status error;
  long status = 0;
  ListedObject object;
};

std::string Describe(absl::string_view field, Probe probe, absl::string_view uri) {
  return absl::StrCat(field, ": ", probe == Probe::kHead ? "HEAD " : "GET (first byte) ", uri);
}

absl::Status TransferError(CURLcode code, absl::string_view described, const char* detail) {
  std::string message = absl::StrCat(described, ": ", *detail ? detail : curl_easy_strerror(code));
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

absl::Status HttpError(long code, absl::string_view message) {
  if (code == 404 || code == 410) return absl::NotFoundError(message);
  if (code == 401 || code == 403) return absl::PermissionDeniedError(message);
  if (code == 429 || code >= 500) return absl::UnavailableError(message);
  return absl::FailedPreconditionError(message);
}

// The total size a Content-Range header states ("bytes 0-0/1234", "bytes */0"), when it does.
std::optional<int64_t> RangeTotal(CURL* curl) {
  std::optional<std::string> range = Header(curl, "Content-Range");
  if (!range) return std::nullopt;
  const size_t slash = range->rfind('/');
  int64_t total = 0;
  if (slash == std::string::npos || !absl::SimpleAtoi(range->substr(slash + 1), &total) ||
      total < 0) {
    return std::nullopt;
  }
  return total;
}

// A body callback that takes nothing: the transfer stops at the first byte of the body.
size_t RefuseBody(char*, size_t, size_t, void*) { return 0; }

// A progress callback (libcurl calls it at least once a second) that aborts the transfer once
// the stop token it is given is requested.
int AbortWhenStopped(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::stop_token*>(stop)->stop_requested() ? 1 : 0;
}

Answer Ask(const HttpListerOptions& options, const DataUri& input, absl::string_view field,
           const std::stop_token& stop, Probe probe) {
  Answer answer;
  std::unique_ptr<CURL, CurlCleanup> curl(curl_easy_init());
  if (curl == nullptr) {
    answer.error = absl::ResourceExhaustedError("curl_easy_init failed");
    return answer;
  }
  char error[CURL_ERROR_SIZE] = "";
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options.timeout));
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, input.text.c_str());
  if (probe == Probe::kHead) {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(handle, CURLOPT_RANGE, "0-0");
    curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, RefuseBody);
  }
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "eofaas-proxy");
  if (!options.ca_file.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, AbortWhenStopped);
  curl_easy_setopt(handle, CURLOPT_XFERINFODATA, &stop);
  const CURLcode code = curl_easy_perform(handle);
  if (code == CURLE_ABORTED_BY_CALLBACK) {
    answer.error =
        absl::CancelledError(absl::StrCat(Describe(field, probe, input.text), ": cancelled"));
    return answer;
  }
  // A body refused on purpose ends the transfer with a write error, after the headers.
  if (code != CURLE_OK && !(probe == Probe::kFirstByte && code == CURLE_WRITE_ERROR)) {
    answer.error = TransferError(code, Describe(field, probe, input.text), error);
    return answer;
  }
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &answer.status);
  ListedObject& object = answer.object;
  object.uri = input.text;
  object.etag = Header(handle, "ETag").value_or("");
  if (probe == Probe::kFirstByte && (answer.status == 206 || answer.status == 416)) {
    // 206 "bytes 0-0/<size>", or 416 "bytes */0" for an empty object: the server reads ranges.
    object.size = RangeTotal(handle);
    object.ranges_supported = true;
    return answer;
  }
  curl_off_t length = -1;
  curl_easy_getinfo(handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  if (length >= 0) object.size = static_cast<int64_t>(length);
  // A 200 to the GET means the server ignored the Range.
  object.ranges_supported = probe == Probe::kHead && AcceptsByteRanges(handle);
  return answer;
}

}  // namespace

HttpLister::HttpLister(HttpListerOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

absl::Status HttpLister::List(const DataUri& input, absl::string_view field,
                              const std::stop_token& stop, ObjectList& out) const {
  if (input.scheme != UriScheme::kHttp && input.scheme != UriScheme::kHttps) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not an http(s):// URI"));
  }
  Probe probe = Probe::kHead;
  Answer answer = Ask(options_, input, field, stop, probe);
  if (!answer.error.ok()) return answer.error;
  std::string refused_head;
  // Stores that refuse HEAD where GET is allowed: S3 with a URL presigned for GET (403), servers
  // without HEAD (405, 501).
  if (answer.status == 403 || answer.status == 405 || answer.status == 501) {
    refused_head = absl::StrCat(" (HEAD answered ", answer.status, ")");
    probe = Probe::kFirstByte;
    answer = Ask(options_, input, field, stop, probe);
    if (!answer.error.ok()) {
      return absl::Status(answer.error.code(), absl::StrCat(answer.error.message(), refused_head));
    }
  }
  const bool empty_object =
      probe == Probe::kFirstByte && answer.status == 416 && answer.object.size == 0;
  if ((answer.status < 200 || answer.status > 299) && !empty_object) {
    return HttpError(answer.status, absl::StrCat(Describe(field, probe, input.text), " answered ",
                                                 answer.status, refused_head));
  }
  out.Append(answer.object);
  return absl::OkStatus();
}

}  // namespace eofaas::proxy

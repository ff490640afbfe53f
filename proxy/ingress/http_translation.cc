#include "proxy/ingress/http_translation.h"

#include <google/protobuf/util/json_util.h>

#include <boost/beast/http/status.hpp>
#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "proxy/dispatch/envelope.h"

namespace eofaas::proxy {
namespace {

constexpr std::string_view kRoutePrefix = "/v1/functions/";
constexpr std::string_view kRouteSuffix = ":invoke";

std::string ErrorJson(std::string_view first_key, std::string_view first,
                      std::string_view message) {
  std::string json = "{\"error\":{\"";
  json.append(first_key).append("\":");
  AppendJsonString(first, json);
  json.append(",\"message\":");
  AppendJsonString(message, json);
  json.append("}}");
  return json;
}

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    default:
      return "INTERNAL";
  }
}

// How deep objects and arrays nest in args on the fast path, args included. Protobuf prints no
// google.protobuf.Struct nested deeper than about 32.
constexpr int kMaxArgsDepth = 24;
// Objects in args have at most this many keys on the fast path (duplicates are looked for).
constexpr size_t kMaxArgsKeys = 32;
// Numbers in args have at most this many digits on the fast path: a double holds them exactly.
constexpr int kMaxNumberDigits = 15;
// The range google.protobuf.Duration allows.
constexpr uint64_t kMaxDurationSeconds = 315'576'000'000;

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// ParseCommonInvokeBody's reader: strict JSON of the common form. Every method returns false for
// what it does not read, valid JSON or not; the caller then gives up.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  // Consumes `c` after white space.
  bool Take(char c) {
    SkipSpace();
    if (pos_ == text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }

  // A string of printable ASCII without escapes; `out` views its contents.
  bool PlainString(std::string_view& out) {
    if (!Take('"')) return false;
    const size_t start = pos_;
    for (; pos_ < text_.size(); ++pos_) {
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        out = text_.substr(start, pos_ - start);
        ++pos_;
        return true;
      }
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
    }
    return false;
  }

  // A string of printable ASCII, its escapes decoded into `out`; \u escapes are not read.
  bool StringValue(std::string& out) {
    out.clear();
    if (!Take('"')) return false;
    size_t plain = pos_;  // start of the run copied as it is
    for (; pos_ < text_.size(); ++pos_) {
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        out.append(text_.data() + plain, pos_ - plain);
        ++pos_;
        return true;
      }
      if (c < 0x20 || c >= 0x7f) return false;
      if (c != '\\') continue;
      out.append(text_.data() + plain, pos_ - plain);
      if (++pos_ == text_.size()) return false;
      switch (text_[pos_]) {
        case '"':
        case '\\':
        case '/':
          out.push_back(text_[pos_]);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        default:
          return false;
      }
      plain = pos_ + 1;
    }
    return false;
  }

  // An int64 as proto3 JSON writes it: an integer, or a string of one. No leading zeros, no
  // "-0", no fraction or exponent (protobuf reads those too, but they are not the common form).
  bool Int64(int64_t& out) {
    SkipSpace();
    const bool quoted = pos_ < text_.size() && text_[pos_] == '"';
    if (quoted) ++pos_;
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    const size_t digits = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    const size_t count = pos_ - digits;
    if (count == 0 || (count > 1 && text_[digits] == '0') ||
        (text_[digits] == '0' && digits != start)) {
      return false;
    }
    auto [end, error] = std::from_chars(text_.data() + start, text_.data() + pos_, out);
    if (error != std::errc() || end != text_.data() + pos_) return false;
    if (quoted) return pos_ < text_.size() && text_[pos_++] == '"';
    return pos_ == text_.size() ||
           !(text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E');
  }

  // A google.protobuf.Duration as proto3 JSON writes it, non-negative: "5s", "1.5s".
  bool Duration(int64_t& seconds, int32_t& nanos) {
    std::string_view text;
    if (!PlainString(text) || text.size() < 2 || text.back() != 's') return false;
    text.remove_suffix(1);
    const size_t dot = text.find('.');
    const std::string_view whole = text.substr(0, dot);
    if (whole.empty() || whole.size() > 12) return false;
    uint64_t value = 0;
    for (char c : whole) {
      if (!IsDigit(c)) return false;
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    if (value > kMaxDurationSeconds) return false;
    seconds = static_cast<int64_t>(value);
    nanos = 0;
    if (dot == std::string_view::npos) return true;
    const std::string_view fraction = text.substr(dot + 1);
    if (fraction.empty() || fraction.size() > 9) return false;
    for (size_t i = 0; i < 9; ++i) {
      if (i < fraction.size() && !IsDigit(fraction[i])) return false;
      nanos = nanos * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
    }
    return true;
  }

  // A JSON object; `out` views its text, from '{' to '}'.
  bool Object(std::string_view& out) {
    SkipSpace();
    const size_t start = pos_;
    if (pos_ == text_.size() || text_[pos_] != '{' || !Value(0)) return false;
    out = text_.substr(start, pos_ - start);
    return true;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }

  bool Value(int depth) {
    SkipSpace();
    if (pos_ == text_.size()) return false;
    switch (text_[pos_]) {
      case '{': {
        if (++depth > kMaxArgsDepth) return false;
        ++pos_;
        if (Take('}')) return true;
        absl::InlinedVector<std::string_view, 8> keys;
        do {
          std::string_view key;
          if (!PlainString(key) || !Take(':') || !Value(depth)) return false;
          // Duplicate keys are protobuf's to judge.
          if (keys.size() == kMaxArgsKeys) return false;
          for (std::string_view seen : keys) {
            if (seen == key) return false;
          }
          keys.push_back(key);
        } while (Take(','));
        return Take('}');
      }
      case '[':
        if (++depth > kMaxArgsDepth) return false;
        ++pos_;
        if (Take(']')) return true;
        do {
          if (!Value(depth)) return false;
        } while (Take(','));
        return Take(']');
      case '"':
        return String();
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  // A string of ASCII; escapes other than of surrogates allowed.
  bool String() {
    ++pos_;  // the opening quote
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20 || c >= 0x80) return false;
      if (c != '\\') continue;
      if (pos_ == text_.size()) return false;
      switch (text_[pos_++]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          break;
        case 'u': {
          if (text_.size() - pos_ < 4) return false;
          for (size_t i = 0; i < 4; ++i) {
            if (!IsHex(text_[pos_ + i])) return false;
          }
          const char first = text_[pos_];
          const char second = text_[pos_ + 1];
          if ((first == 'd' || first == 'D') &&
              (second == '8' || second == '9' || !IsDigit(second))) {
            return false;  // a surrogate (D800-DFFF): pairs and strays are protobuf's to judge
          }
          pos_ += 4;
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  bool Literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)? with at most kMaxNumberDigits digits: no exponent.
  bool Number() {
    if (text_[pos_] == '-') ++pos_;
    const size_t start = pos_;
    while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    int digits = static_cast<int>(pos_ - start);
    if (digits == 0 || (digits > 1 && text_[start] == '0')) return false;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      const size_t fraction = ++pos_;
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
      if (pos_ == fraction) return false;
      digits += static_cast<int>(pos_ - fraction);
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) return false;
    return digits <= kMaxNumberDigits;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

bool ReadCursor(JsonReader& reader, eofaas::v1::DataCursor& cursor) {
  if (!reader.Take('{')) return false;
  if (reader.Take('}')) return true;
  uint32_t seen = 0;
  do {
    std::string_view key;
    if (!reader.PlainString(key) || !reader.Take(':')) return false;
    static constexpr std::string_view kFields[] = {"uri",  "offset", "length", "framing",
                                                   "part", "parts",  "size",   "etag"};
    size_t field = 0;
    while (field < std::size(kFields) && kFields[field] != key) ++field;
    if (field == std::size(kFields) || (seen & (1u << field)) != 0) return false;
    seen |= 1u << field;
    std::string_view text;
    int64_t number = 0;
    switch (field) {
      case 0:
        if (!reader.StringValue(*cursor.mutable_uri())) return false;
        break;
      case 7:
        if (!reader.StringValue(*cursor.mutable_etag())) return false;
        break;
      case 3: {
        eofaas::v1::Framing framing;
        if (!reader.PlainString(text) || !eofaas::v1::Framing_Parse(std::string(text), &framing)) {
          return false;
        }
        cursor.set_framing(framing);
        break;
      }
      default:
        if (!reader.Int64(number)) return false;
        if (field == 1) cursor.set_offset(number);
        if (field == 2) cursor.set_length(number);
        if (field == 4) cursor.set_part(number);
        if (field == 5) cursor.set_parts(number);
        if (field == 6) cursor.set_size(number);
    }
  } while (reader.Take(','));
  return reader.Take('}');
}

// Empties `out` for the next body, its cursor put aside.
void Reset(InvokeBody& out) {
  if (out.request.has_cursor()) {
    out.spare_cursor.reset(out.request.release_cursor());
    out.spare_cursor->Clear();
  }
  out.request.Clear();
  out.args_json.clear();
}

// The request's cursor, the spare one when there is one.
eofaas::v1::DataCursor& NewCursor(InvokeBody& out) {
  if (out.spare_cursor) out.request.set_allocated_cursor(out.spare_cursor.release());
  return *out.request.mutable_cursor();
}

bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  return absl::StartsWithIgnoreCase(absl::string_view(text.data(), text.size()),
                                    absl::string_view(prefix.data(), prefix.size()));
}

// application/json, with parameters or not ("application/json; charset=utf-8").
bool IsJsonMediaType(std::string_view content_type) {
  constexpr std::string_view kJson = "application/json";
  if (!StartsWithIgnoringCase(content_type, kJson)) return false;
  const std::string_view rest = content_type.substr(kJson.size());
  return rest.empty() || rest.front() == ';' || rest.front() == ' ' || rest.front() == '\t';
}

}  // namespace

std::optional<std::string_view> InvokeRoute(std::string_view target) {
  // The absolute form (RFC 9112 section 3.2.2), which a server must take as the origin form of
  // its path: "http://host:port/v1/...".
  for (std::string_view scheme : {"http://", "https://"}) {
    if (StartsWithIgnoringCase(target, scheme)) {
      const size_t path = target.find('/', scheme.size());
      if (path == std::string_view::npos) return std::nullopt;
      target.remove_prefix(path);
      break;
    }
  }
  if (!target.starts_with(kRoutePrefix) || !target.ends_with(kRouteSuffix) ||
      target.size() == kRoutePrefix.size() + kRouteSuffix.size()) {
    return std::nullopt;
  }
  target.remove_prefix(kRoutePrefix.size());
  target.remove_suffix(kRouteSuffix.size());
  if (target.find('/') != std::string_view::npos) return std::nullopt;
  return target;
}

std::optional<HttpAnswer> RejectRequestLine(std::string_view method, std::string_view target,
                                            std::string_view content_type) {
  if (!InvokeRoute(target)) {
    return ErrorAnswer(
        absl::NotFoundError("no route " + std::string(target) +
                            ": the ingress serves POST /v1/functions/{name}:invoke"));
  }
  if (method != "POST") {
    HttpAnswer answer = ErrorAnswer(absl::InvalidArgumentError("method " + std::string(method) +
                                                               " not allowed: invoke with POST"));
    answer.status = 405;
    answer.headers.emplace_back("Allow", "POST");
    return answer;
  }
  if (!content_type.empty() && !IsJsonMediaType(content_type)) {
    HttpAnswer answer = ErrorAnswer(absl::InvalidArgumentError(
        "Content-Type " + std::string(content_type) + ": the body must be application/json"));
    answer.status = 415;
    return answer;
  }
  return std::nullopt;
}

bool ParseCommonInvokeBody(std::string_view body, InvokeBody& out) {
  Reset(out);
  JsonReader reader(body);
  bool seen_cursor = false;
  bool seen_args = false;
  bool seen_timeout = false;
  if (!reader.Take('{')) return false;
  if (!reader.Take('}')) {
    do {
      std::string_view key;
      if (!reader.PlainString(key) || !reader.Take(':')) return false;
      if (key == "cursor" && !seen_cursor) {
        seen_cursor = true;
        if (!ReadCursor(reader, NewCursor(out))) return false;
      } else if (key == "args" && !seen_args) {
        seen_args = true;
        std::string_view args;
        if (!reader.Object(args)) return false;
        out.args_json.assign(args);
      } else if (key == "timeout" && !seen_timeout) {
        seen_timeout = true;
        int64_t seconds;
        int32_t nanos;
        if (!reader.Duration(seconds, nanos)) return false;
        google::protobuf::Duration& timeout = *out.request.mutable_timeout();
        timeout.set_seconds(seconds);
        timeout.set_nanos(nanos);
      } else {
        return false;  // function, an unknown field, or one given twice
      }
    } while (reader.Take(','));
    if (!reader.Take('}')) return false;
  }
  if (!reader.AtEnd()) return false;
  if (!seen_args) out.args_json = "{}";
  return true;
}

absl::Status ParseInvokeBody(std::string_view function, std::string_view body, InvokeBody& out) {
  if (!ParseCommonInvokeBody(body, out)) {
    Reset(out);
    auto parsed = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(body.data(), body.size()), &out.request);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "body: not a JSON object of cursor, args and timeout: ", std::string(parsed.message())));
    }
    if (!out.request.function().empty()) {
      return absl::InvalidArgumentError("body: function is named by the path, not the body");
    }
    absl::StatusOr<std::string> args = ArgsJson(out.request.args());
    if (!args.ok()) return args.status();
    out.args_json = *std::move(args);
    out.request.clear_args();
  }
  out.request.set_function(function.data(), function.size());
  return absl::OkStatus();
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

HttpAnswer ErrorAnswer(const absl::Status& status) {
  return HttpAnswer{
      .status = HttpStatusOf(status.code()),
      .content_type = "application/json",
      .body = ErrorJson("code", CodeName(status.code()),
                        std::string_view(status.message().data(), status.message().size()))};
}

HttpAnswer InvokeAnswer(InvokeOutcome& outcome) {
  if (!outcome.status.ok()) return ErrorAnswer(outcome.status);
  HttpAnswer answer;
  answer.headers.emplace_back("X-Eofaas-Replica", std::move(outcome.replica));
  answer.headers.emplace_back("X-Eofaas-Attempts", absl::StrCat(outcome.attempts));
  if (outcome.error) {
    const FunctionError& error = *outcome.error;
    answer.content_type = "application/json";
    answer.headers.emplace_back("X-Eofaas-Function-Error", error.handled ? "handled" : "unhandled");
    answer.body = ErrorJson("type", error.type, error.message);
  } else {
    answer.content_type = "application/octet-stream";
    answer.body = std::move(outcome.result);
  }
  return answer;
}

void AppendResponseHead(const HttpAnswer& answer, unsigned version, bool keep_alive,
                        std::string& out) {
  namespace http = boost::beast::http;
  const auto status = static_cast<http::status>(answer.status);
  std::string_view reason = http::obsolete_reason(status);
  if (answer.status == 499) reason = "Client Closed Request";  // nginx's name; not in the RFCs
  char number[24];
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  out.append(number, std::to_chars(number, number + sizeof(number), answer.status).ptr);
  out.push_back(' ');
  out.append(reason);
  if (!answer.content_type.empty()) out.append("\r\nContent-Type: ").append(answer.content_type);
  for (const auto& [name, value] : answer.headers) {
    out.append("\r\n").append(name).append(": ").append(value);
  }
  out.append("\r\nContent-Length: ");
  out.append(number, std::to_chars(number, number + sizeof(number), answer.body.size()).ptr);
  if (!keep_alive) {
    out.append("\r\nConnection: close");
  } else if (version == 10) {
    out.append("\r\nConnection: keep-alive");
  }
  out.append("\r\n\r\n");
}

}  // namespace eofaas::proxy

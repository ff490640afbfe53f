#include "proxy/plan/data_uri.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace eofaas::proxy {
namespace {

constexpr absl::string_view kWanted = "want file://, http://, https:// or s3://";

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

std::string Quoted(absl::string_view text) { return absl::StrCat("\"", text, "\""); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsGlobChar(char c) { return c == '*' || c == '?' || c == '['; }

// Calls `emit(c, encoded)` for each character of the raw path of a file URI, percent escapes
// decoded (`encoded` true for those).
template <typename Emit>
absl::Status ForEachPathChar(absl::string_view raw, absl::string_view field, Emit emit) {
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    const bool encoded = c == '%';
    if (encoded) {
      int high = i + 2 < raw.size() ? HexValue(raw[i + 1]) : -1;
      int low = high >= 0 ? HexValue(raw[i + 2]) : -1;
      if (low < 0) {
        return Invalid(field, absl::StrCat("bad percent escape at byte ", i, " of the path"));
      }
      c = static_cast<char>(high * 16 + low);
      if (c == '\0') return Invalid(field, "the path contains an encoded NUL byte (%00)");
      i += 2;
    }
    emit(c, encoded);
  }
  return absl::OkStatus();
}

// Fills path, glob and, for a glob only, pattern from the raw path of a file URI (it starts
// with '/'). Most paths have neither escapes nor glob characters: they are copied as they are.
absl::Status DecodeFilePath(absl::string_view raw, absl::string_view field, DataUri& uri) {
  if (raw.find_first_of("%*?[") == absl::string_view::npos) {
    uri.path.assign(raw.data(), raw.size());
    return absl::OkStatus();
  }
  uri.path.reserve(raw.size());
  absl::Status decoded = ForEachPathChar(raw, field, [&uri](char c, bool encoded) {
    uri.path.push_back(c);
    uri.glob = uri.glob || (!encoded && IsGlobChar(c));
  });
  if (!decoded.ok() || !uri.glob) return decoded;
  // The raw glob characters keep their meaning; encoded ones, and backslashes, are escaped.
  return ForEachPathChar(raw, field, [&uri](char c, bool encoded) {
    if (encoded ? IsGlobChar(c) || c == ']' || c == '\\' : c == '\\') uri.pattern.push_back('\\');
    uri.pattern.push_back(c);
  });
}

absl::Status ParseFile(absl::string_view rest, absl::string_view field, DataUri& uri) {
  constexpr absl::string_view shape = "file URI must be file:///absolute/path";
  if (!absl::ConsumePrefix(&rest, "//")) return Invalid(field, shape);
  size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) return Invalid(field, shape);
  absl::string_view host = rest.substr(0, slash);
  if (!host.empty() && !absl::EqualsIgnoreCase(host, "localhost")) {
    return Invalid(
        field, absl::StrCat(shape, " (host ", Quoted(host), " is neither empty nor localhost)"));
  }
  absl::string_view raw_path = rest.substr(slash);
  if (absl::StrContains(raw_path, '#')) {
    return Invalid(field, "file URI must not have a fragment (percent-encode '#' as %23)");
  }
  return DecodeFilePath(raw_path, field, uri);
}

absl::Status ParseHttp(absl::string_view rest, absl::string_view field) {
  if (!absl::ConsumePrefix(&rest, "//")) return Invalid(field, "http URI must be http://host/...");
  if (absl::StrContains(rest, ' ')) {
    return Invalid(field, "spaces must be percent-encoded (%20)");
  }
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return Invalid(field, "missing host");
  if (absl::StrContains(authority, '@')) {
    return Invalid(field, "credentials in the URI are not supported");
  }
  absl::string_view host = authority;
  absl::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == absl::string_view::npos) return Invalid(field, "unterminated IPv6 address");
    host = authority.substr(0, close + 1);
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Invalid(field, "bad authority " + Quoted(authority));
      port = after.substr(1);
      if (port.empty()) return Invalid(field, "empty port");
    }
  } else if (size_t colon = authority.find(':'); colon != absl::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return Invalid(field, "empty port");
  }
  if (host.empty() || host == "[]") return Invalid(field, "missing host");
  if (!port.empty()) {
    uint32_t number = 0;
    bool digits = port.find_first_not_of("0123456789") == absl::string_view::npos;
    if (!digits || !absl::SimpleAtoi(port, &number) || number == 0 || number > 65535) {
      return Invalid(field, absl::StrCat("bad port ", Quoted(port)));
    }
  }
  return absl::OkStatus();
}

// Bucket names as S3 defines them: 3 to 63 lowercase letters, digits, dots and hyphens,
// beginning and ending with a letter or digit.
bool IsBucketName(absl::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '-') return false;
  }
  return absl::ascii_isalnum(name.front()) && absl::ascii_isalnum(name.back());
}

absl::Status ParseS3(absl::string_view rest, absl::string_view field, DataUri& uri) {
  if (!absl::ConsumePrefix(&rest, "//")) return Invalid(field, "s3 URI must be s3://bucket/key");
  size_t slash = rest.find('/');
  absl::string_view bucket = rest.substr(0, slash);
  if (!IsBucketName(bucket)) {
    return Invalid(field, absl::StrCat("invalid bucket name ", Quoted(bucket),
                                       " (3-63 lowercase letters, digits, '.' and '-')"));
  }
  uri.bucket = std::string(bucket);
  if (slash != absl::string_view::npos) uri.key = std::string(rest.substr(slash + 1));
  return absl::OkStatus();
}

bool IsSchemeChar(char c) { return absl::ascii_isalnum(c) || c == '+' || c == '-' || c == '.'; }

}  // namespace

absl::StatusOr<DataUri> ParseDataUri(absl::string_view text, absl::string_view field) {
  if (text.empty()) return Invalid(field, "required");
  if (text.size() > kMaxUriBytes) {
    return Invalid(field, absl::StrCat("URI longer than ", kMaxUriBytes, " bytes"));
  }
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Invalid(field, "control characters must be percent-encoded");
    }
  }
  size_t colon = text.find(':');
  absl::string_view scheme = text.substr(0, colon);
  bool valid_scheme =
      colon != absl::string_view::npos && !scheme.empty() && absl::ascii_isalpha(scheme.front());
  for (char c : scheme) valid_scheme = valid_scheme && IsSchemeChar(c);
  if (!valid_scheme) {
    return Invalid(field, absl::StrCat(Quoted(text), " is not a URI (", kWanted, ")"));
  }
  DataUri uri;
  uri.text = std::string(text);
  absl::string_view rest = text.substr(colon + 1);
  absl::Status status;
  if (absl::EqualsIgnoreCase(scheme, "file")) {
    uri.scheme = UriScheme::kFile;
    status = ParseFile(rest, field, uri);
  } else if (absl::EqualsIgnoreCase(scheme, "http")) {
    uri.scheme = UriScheme::kHttp;
    status = ParseHttp(rest, field);
  } else if (absl::EqualsIgnoreCase(scheme, "https")) {
    uri.scheme = UriScheme::kHttps;
    status = ParseHttp(rest, field);
  } else if (absl::EqualsIgnoreCase(scheme, "s3")) {
    uri.scheme = UriScheme::kS3;
    status = ParseS3(rest, field, uri);
  } else {
    return Invalid(field, absl::StrCat("unsupported scheme ", Quoted(scheme), " (", kWanted, ")"));
  }
  if (!status.ok()) return status;
  return uri;
}

std::string EncodePath(absl::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  static constexpr absl::string_view kKept = "/-._~!$&'()+,;=:@";
  std::string encoded;
  encoded.reserve(path.size());
  for (char c : path) {
    if (absl::ascii_isalnum(c) || kKept.find(c) != absl::string_view::npos) {
      encoded.push_back(c);
    } else {
      auto byte = static_cast<unsigned char>(c);
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 15]);
    }
  }
  return encoded;
}

std::string FileUri(absl::string_view path) { return absl::StrCat("file://", EncodePath(path)); }

}  // namespace eofaas::proxy

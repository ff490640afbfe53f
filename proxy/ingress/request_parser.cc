#include "proxy/ingress/request_parser.h"

#include <strings.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace eofaas::proxy {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr size_t kMaxChunkLineBytes = 4096;  // a chunk's size and extensions
constexpr size_t kMaxChunkSizeDigits = 15;   // below 2^60: no overflow

// What each byte may be, as bits: one table lookup per byte of the head.
enum CharClass : uint8_t {
  kToken = 1,       // tchar (RFC 9110 section 5.6.2)
  kFieldValue = 2,  // visible, SP, HTAB or obs-text (RFC 9110 section 5.5)
  kTargetChar = 4,  // visible ASCII: a request target (RFC 9112 section 3.2)
};

constexpr std::array<uint8_t, 256> kCharClasses = [] {
  std::array<uint8_t, 256> classes{};
  for (int c = 0x21; c < 0x7f; ++c) classes[c] = kFieldValue | kTargetChar;
  for (int c = 0x80; c < 0x100; ++c) classes[c] = kFieldValue;
  classes[' '] = classes['\t'] = kFieldValue;
  for (int c = '0'; c <= '9'; ++c) classes[c] |= kToken;
  for (int c = 'a'; c <= 'z'; ++c) classes[c] |= kToken;
  for (int c = 'A'; c <= 'Z'; ++c) classes[c] |= kToken;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    classes[static_cast<unsigned char>(c)] |= kToken;
  return classes;
}();

// Every byte of `text` is of `char_class`.
bool AllOf(std::string_view text, CharClass char_class) {
  uint8_t classes = char_class;  // those all bytes so far are of; no branch per byte
  for (const char c : text) classes &= kCharClasses[static_cast<unsigned char>(c)];
  return classes != 0;
}

bool IsToken(std::string_view text) { return !text.empty() && AllOf(text, kToken); }

bool IsOws(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimOws(std::string_view text) {
  while (!text.empty() && IsOws(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsOws(text.back())) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls `each` with the elements of a comma-separated list, trimmed, the empty ones left out
// (RFC 9110 section 5.6.1), until it returns false. Returns false when it did.
template <typename Each>
bool ForEachElement(std::string_view list, Each each) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view element = TrimOws(list.substr(0, comma));
    if (!element.empty() && !each(element)) return false;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace

void RequestParser::Start(HttpRequest& out) {
  out_ = &out;
  out.method.clear();
  out.target.clear();
  out.content_type.clear();
  out.body.clear();
  out.version = 11;
  out.keep_alive = true;
  out.expects_continue = false;
  state_ = State::kNeedMore;
  step_ = Step::kHead;
  error_.clear();
  head_bytes_ = 0;
  remaining_ = 0;
  trailer_bytes_ = 0;
  has_length_ = false;
  chunked_ = false;
  seen_content_type_ = false;
  hosts_ = 0;
  close_ = false;
  keep_alive_ = false;
  expect_continue_ = false;
}

size_t RequestParser::Parse(std::string_view data) {
  if (state_ != State::kNeedMore) return 0;
  size_t used = 0;
  if (step_ == Step::kHead) {
    used = ParseHead(data);
    if (step_ == Step::kHead || state_ != State::kNeedMore) return used;
    // RFC 9110 section 10.1.1: the client waits for 100 (Continue) unless it is HTTP/1.0 or
    // sent its body along anyway.
    out_->expects_continue = expect_continue_ && out_->version == 11 && used == data.size();
  }
  return used + ParseBody(data.substr(used));
}

bool RequestParser::Fail(State state, std::string error) {
  state_ = state;
  error_ = std::move(error);
  return false;
}

size_t RequestParser::ParseHead(std::string_view data) {
  // Line by line: each whole one is parsed and used, so none is looked at twice.
  size_t used = 0;
  for (;;) {
    const size_t lf = data.find('\n', used);
    const size_t line_bytes = (lf == std::string_view::npos ? data.size() : lf + 1) - used;
    if (head_bytes_ + line_bytes > max_head_bytes_) {
      Fail(State::kHeadTooLarge, "the request line and header fields exceed " +
                                     std::to_string(max_head_bytes_) + " bytes");
      return used;
    }
    if (lf == std::string_view::npos) return used;
    if (lf == used || data[lf - 1] != '\r') {
      Fail(State::kBad, "header: a line that does not end with CRLF");
      return used;
    }
    const std::string_view line = data.substr(used, lf - 1 - used);
    used = lf + 1;
    if (out_->method.empty()) {  // no request line yet
      // Empty lines before the request line are ignored (RFC 9112 section 2.2).
      if (line.empty()) continue;
      head_bytes_ += line_bytes;
      if (!ParseRequestLine(line)) return used;
    } else if (!line.empty()) {
      head_bytes_ += line_bytes;
      if (!ParseField(line)) return used;
    } else {
      break;
    }
  }

  // The end of the head: exactly one Host field in HTTP/1.1 (RFC 9112 section 3.2), then the
  // body's framing (section 6.3).
  if (out_->version == 11 && hosts_ != 1) {
    Fail(State::kBad, hosts_ == 0 ? "Host: missing" : "Host: given more than once");
  } else if (chunked_ && has_length_) {
    Fail(State::kBad, "Transfer-Encoding: not allowed with Content-Length");
  } else if (chunked_ && out_->version == 10) {
    // An HTTP/1.0 hop may not have known the coding: its framing is faulty (section 6.1).
    Fail(State::kBad, "Transfer-Encoding: not allowed in HTTP/1.0");
  } else if (chunked_) {
    step_ = Step::kChunkSize;
  } else if (remaining_ > max_body_bytes_) {
    Fail(State::kBodyTooLarge,
         "Content-Length: larger than " + std::to_string(max_body_bytes_) + " bytes");
  } else {
    out_->body.reserve(remaining_);
    step_ = Step::kBody;
    if (remaining_ == 0) state_ = State::kDone;
  }
  out_->keep_alive = !close_ && (out_->version == 11 || keep_alive_);
  return used;
}

bool RequestParser::ParseRequestLine(std::string_view line) {
  const size_t space = line.find(' ');
  const size_t second_space = space == std::string_view::npos ? space : line.find(' ', space + 1);
  if (second_space == std::string_view::npos) {
    return Fail(State::kBad, "request line: not a method, a target and a version");
  }
  const std::string_view method = line.substr(0, space);
  const std::string_view target = line.substr(space + 1, second_space - space - 1);
  const std::string_view version = line.substr(second_space + 1);
  if (!IsToken(method)) return Fail(State::kBad, "request line: the method is not a token");
  if (target.empty() || !AllOf(target, kTargetChar)) {
    return Fail(State::kBad, "request line: the target is not a URI");
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
      version[7] > '9') {
    return Fail(State::kBad, "request line: the version is not HTTP/1.x");
  }
  out_->method.assign(method);
  out_->target.assign(target);
  out_->version = version[7] == '0' ? 10 : 11;
  return true;
}

bool RequestParser::ParseField(std::string_view line) {
  if (IsOws(line.front())) return Fail(State::kBad, "header: a folded line");
  const size_t colon = line.find(':');
  const std::string_view name = line.substr(0, colon);
  if (colon == std::string_view::npos || !IsToken(name)) {
    return Fail(State::kBad, "header: a field without a name and a colon");
  }
  const std::string_view value = TrimOws(line.substr(colon + 1));
  if (!AllOf(value, kFieldValue)) {
    return Fail(State::kBad, std::string(name) + ": a control character in the value");
  }
  if (EqualsIgnoreCase(name, "Content-Length")) {
    uint64_t length = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (value.empty() || error != std::errc() || end != value.data() + value.size()) {
      return Fail(State::kBad, "Content-Length: not a number of bytes");
    }
    if (has_length_ && length != remaining_) {
      return Fail(State::kBad, "Content-Length: given twice, differently");
    }
    has_length_ = true;
    remaining_ = length;
  } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
    bool any = false;
    const bool valid = ForEachElement(value, [&](std::string_view coding) {
      any = true;
      if (chunked_) return Fail(State::kBad, "Transfer-Encoding: chunked is not the last coding");
      if (!EqualsIgnoreCase(coding, "chunked")) {
        return Fail(State::kNotImplemented,
                    "Transfer-Encoding: " + std::string(coding) + " is not supported");
      }
      chunked_ = true;
      return true;
    });
    if (valid && !any) return Fail(State::kBad, "Transfer-Encoding: empty");
    return valid;
  } else if (EqualsIgnoreCase(name, "Connection")) {
    ForEachElement(value, [&](std::string_view option) {
      close_ = close_ || EqualsIgnoreCase(option, "close");
      keep_alive_ = keep_alive_ || EqualsIgnoreCase(option, "keep-alive");
      return true;
    });
  } else if (EqualsIgnoreCase(name, "Host")) {
    ++hosts_;
  } else if (EqualsIgnoreCase(name, "Expect")) {
    expect_continue_ = expect_continue_ || EqualsIgnoreCase(value, "100-continue");
  } else if (EqualsIgnoreCase(name, "Content-Type") && !seen_content_type_) {
    seen_content_type_ = true;
    out_->content_type.assign(value);
  }
  return true;
}

size_t RequestParser::ParseBody(std::string_view data) {
  size_t used = 0;
  while (state_ == State::kNeedMore) {
    const std::string_view rest = data.substr(used);
    switch (step_) {
      case Step::kBody:
      case Step::kChunkData: {
        if (rest.empty()) return used;
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, rest.size()));
        out_->body.append(rest.data(), take);
        used += take;
        remaining_ -= take;
        if (remaining_ > 0) break;
        if (step_ == Step::kBody) {
          state_ = State::kDone;
        } else {
          step_ = Step::kChunkEnd;
        }
        break;
      }
      case Step::kChunkEnd:
        if (rest.size() < kCrlf.size()) return used;
        if (rest.substr(0, 2) != kCrlf) {
          Fail(State::kBad, "chunked body: a chunk does not end with CRLF");
          return used;
        }
        used += 2;
        step_ = Step::kChunkSize;
        break;
      case Step::kChunkSize: {
        const size_t eol = rest.find(kCrlf);
        if (eol == std::string_view::npos) {
          if (rest.size() > kMaxChunkLineBytes) {
            Fail(State::kBad, "chunked body: a chunk size line too long");
          }
          return used;
        }
        if (!ParseChunkSize(rest.substr(0, eol))) return used;
        used += eol + 2;
        break;
      }
      case Step::kTrailers: {
        const size_t eol = rest.find(kCrlf);
        const size_t line_bytes = eol == std::string_view::npos ? rest.size() : eol + 2;
        if (trailer_bytes_ + line_bytes > max_head_bytes_) {
          Fail(State::kHeadTooLarge,
               "chunked body: trailer fields exceed " + std::to_string(max_head_bytes_) + " bytes");
          return used;
        }
        if (eol == std::string_view::npos) return used;
        const std::string_view line = rest.substr(0, eol);
        used += line_bytes;
        trailer_bytes_ += line_bytes;
        if (line.empty()) {
          state_ = State::kDone;
          break;
        }
        // A trailer field is checked like any other, then dropped: none frames the message.
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || !IsToken(line.substr(0, colon)) ||
            !AllOf(line.substr(colon + 1), kFieldValue)) {
          Fail(State::kBad, "chunked body: a malformed trailer field");
          return used;
        }
        break;
      }
      case Step::kHead:
        return used;
    }
  }
  return used;
}

bool RequestParser::ParseChunkSize(std::string_view line) {
  uint64_t size = 0;
  size_t digits = 0;
  for (int value; digits < line.size() && (value = HexValue(line[digits])) >= 0; ++digits) {
    if (digits == kMaxChunkSizeDigits) return Fail(State::kBad, "chunked body: a chunk too large");
    size = size * 16 + static_cast<uint64_t>(value);
  }
  if (digits == 0) return Fail(State::kBad, "chunked body: a chunk size that is not hexadecimal");
  // Extensions (";name=value") are ignored, as RFC 9112 section 7.1.1 allows.
  const std::string_view extensions = TrimOws(line.substr(digits));
  if (!extensions.empty() && (extensions.front() != ';' || !AllOf(extensions, kFieldValue))) {
    return Fail(State::kBad, "chunked body: a malformed chunk extension");
  }
  if (size == 0) {
    step_ = Step::kTrailers;
  } else if (size > max_body_bytes_ - out_->body.size()) {
    return Fail(State::kBodyTooLarge,
                "chunked body: larger than " + std::to_string(max_body_bytes_) + " bytes");
  } else {
    remaining_ = size;
    step_ = Step::kChunkData;
  }
  return true;
}

}  // namespace eofaas::proxy

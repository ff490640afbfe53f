#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace eofaas::proxy {

/// What the ingress keeps of a request.
struct HttpRequest {
  std::string method;
  std::string target;
  std::string content_type;  ///< the first Content-Type field; empty without one
  std::string body;          ///< de-chunked
  unsigned version = 11;     ///< 10 or 11
  bool keep_alive = true;    ///< the client keeps the connection after the answer
  /// Set once the head is parsed when an HTTP/1.1 request says "Expect: 100-continue" and its
  /// body is still to come: the client waits for 100 (Continue) before sending it.
  bool expects_continue = false;
};

/// An HTTP/1.1 request parser (RFC 9112): the request line, the fields that frame the message
/// (Content-Length, Transfer-Encoding, Connection) and Content-Type, and the body, whole or
/// chunked. It is fed the bytes of a connection as they arrive and parses request after request
/// into the same HttpRequest, whose strings keep their memory.
///
/// Strict where leniency lets a request be read two ways (RFC 9112 section 11.2): a field name
/// followed by white space, folded lines, a bare CR or LF, Content-Length given with
/// Transfer-Encoding, and differing or malformed lengths are all errors, as is an HTTP/1.1
/// request without exactly one Host field.
class RequestParser {
 public:
  enum class State {
    kNeedMore,        ///< the request goes on in bytes yet to come
    kDone,            ///< the request is whole
    kBad,             ///< not HTTP/1.1: 400
    kHeadTooLarge,    ///< 431
    kBodyTooLarge,    ///< 413
    kNotImplemented,  ///< a transfer coding other than chunked: 501
  };

  RequestParser(size_t max_head_bytes, uint64_t max_body_bytes)
      : max_head_bytes_(max_head_bytes), max_body_bytes_(max_body_bytes) {}

  /// Starts the next request, parsed into `out`, which must outlive the parsing.
  void Start(HttpRequest& out);

  /// Parses `data`: the bytes that follow those used so far. Returns how many it used; the
  /// others (part of a line, or of the next request) must be passed again, followed by more.
  size_t Parse(std::string_view data);

  State state() const { return state_; }
  /// What was wrong, once state() is an error.
  const std::string& error() const { return error_; }

 private:
  enum class Step { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailers };

  size_t ParseHead(std::string_view data);
  bool ParseRequestLine(std::string_view line);
  bool ParseField(std::string_view line);
  size_t ParseBody(std::string_view data);
  bool ParseChunkSize(std::string_view line);
  bool Fail(State state, std::string error);

  const size_t max_head_bytes_;
  const uint64_t max_body_bytes_;
  HttpRequest* out_ = nullptr;
  State state_ = State::kNeedMore;
  Step step_ = Step::kHead;
  std::string error_;
  size_t head_bytes_ = 0;   // of the lines parsed so far
  uint64_t remaining_ = 0;  // of the body, or of the current chunk
  size_t trailer_bytes_ = 0;
  // Fields seen in the head.
  bool has_length_ = false;
  bool chunked_ = false;
  bool seen_content_type_ = false;
  int hosts_ = 0;  // Host fields
  bool close_ = false;
  bool keep_alive_ = false;
  bool expect_continue_ = false;
};

}  // namespace eofaas::proxy

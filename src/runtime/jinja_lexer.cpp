// Lexer of the Jinja interpreter (jinja.h), following jinja2 3.1's lexer.py rule for rule with trim_blocks and
// lstrip_blocks on: "-" strips all whitespace beside a tag, "+" keeps it, a block or comment tag alone on its line
// takes the line's indentation, and a block or comment tag eats one newline after it. Comments are dropped and raw
// blocks become text; the parser (jinja_parser.cpp) sees data, tag delimiters, names, literals and operators.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "jinja_internal.h"
#include "unicode.h"

namespace palign::runtime::jinja {

void syntax_error(int line, const std::string& message) {
  PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.jinja] line ", line, ": syntax error: ", message);
}

void unsupported_at(int line, const std::string& message) {
  PALIGN_THROW(ErrorCode::kUnsupported, "[runtime.jinja] line ", line, ": ", message);
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int count_newlines(std::string_view s, size_t begin, size_t end) {
  return static_cast<int>(std::count(s.begin() + begin, s.begin() + end, '\n'));
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {}

  std::vector<Token> run() {
    const size_t n = src_.size();
    while (pos_ < n) {
      const size_t start = find_tag(pos_);
      if (start == std::string::npos) {
        push(Tok::kData, src_.substr(pos_));
        line_ += count_newlines(src_, pos_, n);
        break;
      }
      std::string text = src_.substr(pos_, start - pos_);
      const int text_newlines = count_newlines(src_, pos_, start);
      const char kind = src_[start + 1];
      size_t p = start + 2;
      const char sign = p < n && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (sign) ++p;
      const size_t raw_end = kind == '%' ? match_raw_begin(p) : 0;
      text = strip_data(std::move(text), sign, /*variable=*/kind == '{');
      if (!text.empty()) push(Tok::kData, std::move(text));
      line_ += text_newlines;
      if (raw_end) {
        line_ += count_newlines(src_, start, raw_end);
        line_starting_ = src_[raw_end - 1] == '\n';
        lex_raw(raw_end);
      } else if (kind == '#') {
        lex_comment(start, p);
      } else {
        push(kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "");
        pos_ = p;
        line_starting_ = false;
        lex_tag(/*variable=*/kind == '{');
      }
    }
    push(Tok::kEof, "");
    return std::move(tokens_);
  }

 private:
  void push(Tok type, std::string text) { tokens_.push_back(Token{type, std::move(text), line_}); }

  // The earliest "{{", "{%" or "{#" at or after from.
  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  bool starts(size_t at, std::string_view what) const { return src_.compare(at, what.size(), what) == 0; }

  // Length in bytes of the Python whitespace character at at (str.isspace()), or 0.
  size_t space_len(size_t at) const {
    if (at >= src_.size()) return 0;
    const unsigned char c = static_cast<unsigned char>(src_[at]);
    if (c < 0x80) return is_python_space(c) ? 1 : 0;
    size_t next = at;
    const char32_t cp = unicode::next_code_point(src_, next);
    return is_python_space(cp) ? next - at : 0;
  }
  size_t skip_spaces(size_t at) const {
    while (size_t len = space_len(at)) at += len;
    return at;
  }

  // {%[-+]?\s*raw\s*(-%}\s*|%}) at the tag start: the position after it, or 0.
  size_t match_raw_begin(size_t p) const {
    p = skip_spaces(p);
    if (!starts(p, "raw")) return 0;
    p = skip_spaces(p + 3);
    if (starts(p, "-%}")) return skip_spaces(p + 3);
    if (starts(p, "%}")) return p + 2;
    return 0;
  }

  // jinja2's OptionalLStrip: "-" strips all whitespace before the tag; otherwise, with lstrip_blocks, a block or
  // comment tag preceded on its line by whitespace only takes that whitespace away ("+" keeps it).
  std::string strip_data(std::string text, char sign, bool variable) const {
    if (sign == '-') return python_strip(text, std::nullopt, /*left=*/false, /*right=*/true);
    if (sign == '+' || variable) return text;
    const size_t newline = text.rfind('\n');
    const size_t l_pos = newline == std::string::npos ? 0 : newline + 1;
    if (l_pos == 0 && !line_starting_) return text;
    if (l_pos >= text.size()) return text;
    for (size_t i = l_pos; i < text.size();) {
      size_t next = i;
      if (!is_python_space(unicode::next_code_point(text, next))) return text;
      i = next;
    }
    text.resize(l_pos);
    return text;
  }

  void lex_raw(size_t content) {
    for (size_t q = src_.find("{%", content); q != std::string::npos; q = src_.find("{%", q + 1)) {
      size_t p = q + 2;
      const char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (sign) ++p;
      p = skip_spaces(p);
      if (!starts(p, "endraw")) continue;
      p = skip_spaces(p + 6);
      size_t end = 0;
      if (starts(p, "+%}")) {
        end = p + 3;
      } else if (starts(p, "-%}")) {
        end = skip_spaces(p + 3);
      } else if (starts(p, "%}")) {
        end = p + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      std::string text = strip_data(src_.substr(content, q - content), sign, /*variable=*/false);
      if (!text.empty()) push(Tok::kData, std::move(text));
      line_ += count_newlines(src_, content, end);
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    syntax_error(line_, "missing end of raw directive ({% endraw %})");
  }

  void lex_comment(size_t start, size_t content) {
    const size_t q = src_.find("#}", content);
    if (q == std::string::npos) syntax_error(line_, "missing end of comment tag (#})");
    const char sign = q > content && (src_[q - 1] == '-' || src_[q - 1] == '+') ? src_[q - 1] : 0;
    size_t end = q + 2;
    if (sign == '-') {
      end = skip_spaces(end);
    } else if (!sign && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    line_ += count_newlines(src_, start, end);
    line_starting_ = src_[end - 1] == '\n';
    pos_ = end;
  }

  // Tokens inside {{ }} or {% %} up to the end tag; end tags only count outside brackets, as in jinja2.
  void lex_tag(bool variable) {
    std::vector<char> balance;
    const size_t n = src_.size();
    while (true) {
      if (pos_ >= n)
        syntax_error(line_, variable ? "unexpected end of template, expected '}}'"
                                     : "unexpected end of template, expected '%}'");
      if (balance.empty()) {
        size_t end = 0;
        if (variable) {
          if (starts(pos_, "-}}")) {
            end = skip_spaces(pos_ + 3);
          } else if (starts(pos_, "}}")) {
            end = pos_ + 2;
          }
        } else if (starts(pos_, "+%}")) {
          end = pos_ + 3;
        } else if (starts(pos_, "-%}")) {
          end = skip_spaces(pos_ + 3);
        } else if (starts(pos_, "%}")) {
          end = pos_ + 2;
          if (end < n && src_[end] == '\n') ++end;  // trim_blocks
        }
        if (end) {
          push(variable ? Tok::kVarEnd : Tok::kBlockEnd, "");
          line_ += count_newlines(src_, pos_, end);
          line_starting_ = src_[end - 1] == '\n';
          pos_ = end;
          return;
        }
      }
      if (size_t len = space_len(pos_)) {
        const size_t end = skip_spaces(pos_ + len);
        line_ += count_newlines(src_, pos_, end);
        pos_ = end;
        continue;
      }
      if (lex_number() || lex_name() || lex_string()) continue;
      lex_operator(balance);
    }
  }

  // (\d+_)*\d+ at p: the end, or npos.
  size_t match_digits(size_t p) const {
    if (p >= src_.size() || !is_digit(src_[p])) return std::string::npos;
    while (true) {
      while (p < src_.size() && is_digit(src_[p])) ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) {
        ++p;
        continue;
      }
      return p;
    }
  }

  static std::string without_underscores(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_') out.push_back(c);
    }
    return out;
  }

  bool lex_number() {
    const size_t p = pos_;
    if (!is_digit(src_[p])) return false;
    // float_re: (?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+-]?(\d+_)*\d+|\.(\d+_)*\d+)
    if (p == 0 || src_[p - 1] != '.') {
      const size_t int_end = match_digits(p);
      size_t end = std::string::npos;
      size_t frac_end = std::string::npos;
      if (int_end < src_.size() && src_[int_end] == '.') frac_end = match_digits(int_end + 1);
      const size_t exp_at = frac_end != std::string::npos ? frac_end : int_end;
      if (exp_at < src_.size() && (src_[exp_at] == 'e' || src_[exp_at] == 'E')) {
        size_t q = exp_at + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        end = match_digits(q);
      }
      if (end == std::string::npos) end = frac_end;
      if (end != std::string::npos) {
        const std::string text = without_underscores(std::string_view(src_).substr(p, end - p));
        Token t{Tok::kFloat, text, line_};
        t.float_value = std::strtod(text.c_str(), nullptr);
        tokens_.push_back(std::move(t));
        pos_ = end;
        return true;
      }
    }
    // integer_re: 0b(_?[01])+ | 0o(_?[0-7])+ | 0x(_?[0-9a-f])+ | [1-9](_?\d)* | 0(_?0)*
    int base = 10;
    size_t q = p;
    auto digit_ok = [&](char c) {
      const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (base == 2) return l == '0' || l == '1';
      if (base == 8) return l >= '0' && l <= '7';
      if (base == 16) return is_digit(l) || (l >= 'a' && l <= 'f');
      return is_digit(l);
    };
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("bBoOxX", src_[p + 1]) && src_[p + 1] != '\0') {
      const char prefix = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[p + 1])));
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      q = p + 2;
      size_t end = q;
      while (true) {
        size_t r = end;
        if (r < src_.size() && src_[r] == '_') ++r;
        if (r < src_.size() && digit_ok(src_[r])) {
          end = r + 1;
        } else {
          break;
        }
      }
      if (end == q) {
        base = 10;  // "0b" without digits: the integer 0, then a name
      } else {
        return push_integer(p + 2, end, base);
      }
    }
    size_t end = p + 1;
    const bool zero = src_[p] == '0';
    while (true) {
      size_t r = end;
      if (r < src_.size() && src_[r] == '_') ++r;
      if (r < src_.size() && (zero ? src_[r] == '0' : is_digit(src_[r]))) {
        end = r + 1;
      } else {
        break;
      }
    }
    return push_integer(p, end, 10);
  }

  bool push_integer(size_t begin, size_t end, int base) {
    const std::string digits = without_underscores(std::string_view(src_).substr(begin, end - begin));
    Token t{Tok::kInteger, digits, line_};
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t.int_value, base);
    if (ec != std::errc()) unsupported_at(line_, "the integer literal " + digits + " does not fit in 64 bits");
    tokens_.push_back(std::move(t));
    pos_ = end;
    return true;
  }

  bool lex_name() {
    if (!is_name_start(src_[pos_])) {
      if (static_cast<unsigned char>(src_[pos_]) >= 0x80) {
        unsupported_at(line_, "a non-ASCII character outside a string literal (identifiers must be ASCII)");
      }
      return false;
    }
    size_t end = pos_ + 1;
    while (end < src_.size() && is_name_char(src_[end])) ++end;
    push(Tok::kName, src_.substr(pos_, end - pos_));
    pos_ = end;
    return true;
  }

  // A Python string literal's body through str.encode("ascii", "backslashreplace").decode("unicode-escape"), as
  // jinja2 unescapes it.
  std::string unescape(std::string_view body) const {
    std::string out;
    for (size_t i = 0; i < body.size();) {
      const char c = body[i];
      if (c != '\\' || i + 1 >= body.size()) {
        out.push_back(c);
        ++i;
        continue;
      }
      const char e = body[i + 1];
      i += 2;
      auto hex = [&](int digits) -> char32_t {
        if (i + digits > body.size()) syntax_error(line_, "truncated \\x, \\u or \\U escape in a string literal");
        char32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          const char h = body[i + k];
          int v = is_digit(h)              ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (v < 0) syntax_error(line_, "truncated \\x, \\u or \\U escape in a string literal");
          cp = cp * 16 + static_cast<char32_t>(v);
        }
        i += digits;
        return cp;
      };
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
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
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
          unicode::append_utf8(out, hex(2));
          break;
        case 'u':
          unicode::append_utf8(out, hex(4));
          break;
        case 'U': {
          const char32_t cp = hex(8);
          if (cp > 0x10FFFF) syntax_error(line_, "illegal Unicode character in a \\U escape");
          unicode::append_utf8(out, cp);
          break;
        }
        case 'N':
          unsupported_at(line_, "\\N{...} escapes in string literals are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < body.size() && body[i] >= '0' && body[i] <= '7'; ++k, ++i) {
              cp = cp * 8 + static_cast<char32_t>(body[i] - '0');
            }
            unicode::append_utf8(out, cp);
          } else if (static_cast<unsigned char>(e) >= 0x80) {
            // backslashreplace turned the character into its \x / \u / \U escape, whose backslash the escaped
            // backslash consumed: the text of the escape remains.
            size_t at = i - 1;
            const char32_t cp = unicode::next_code_point(body, at);
            char buf[16];
            std::snprintf(buf, sizeof(buf),
                          cp < 0x100     ? "\\x%02x"
                          : cp < 0x10000 ? "\\u%04x"
                                         : "\\U%08x",
                          static_cast<unsigned>(cp));
            out += buf;
            i = at;
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  bool lex_string() {
    const char quote = src_[pos_];
    if (quote != '\'' && quote != '"') return false;
    size_t p = pos_ + 1;
    while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
    if (p >= src_.size()) syntax_error(line_, std::string("unterminated string literal starting with ") + quote);
    const std::string_view body = std::string_view(src_).substr(pos_ + 1, p - pos_ - 1);
    push(Tok::kString, unescape(body));
    line_ += count_newlines(src_, pos_, p);
    pos_ = p + 1;
    return true;
  }

  void lex_operator(std::vector<char>& balance) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (starts(pos_, op)) {
        push(Tok::kOp, std::string(op));
        pos_ += 2;
        return;
      }
    }
    const char c = src_[pos_];
    if (!std::strchr("+-/*%~[](){}><=.:|,;", c) || c == '\0') {
      syntax_error(line_, "unexpected character '" + std::string(1, c) + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) syntax_error(line_, "unexpected '" + std::string(1, c) + "'");
      if (balance.back() != c) {
        syntax_error(line_,
                     "unexpected '" + std::string(1, c) + "', expected '" + std::string(1, balance.back()) + "'");
      }
      balance.pop_back();
    }
    push(Tok::kOp, std::string(1, c));
    ++pos_;
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string source) { return Lexer(std::move(source)).run(); }

}  // namespace palign::runtime::jinja

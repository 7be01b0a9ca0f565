// Parser of the Jinja interpreter (jinja.h), following jinja2 3.1's parser.py: its statements (for with else and an
// inline if, if / elif / else, set and {% set %} blocks, macro, call, filter, with, print, break / continue, and
// transformers' {% generation %}) and its expression precedence (or < and < not < comparisons < + - < ~ <
// * / // % < ** < unary - + < postfix . [] () < filters and tests). Filters and tests are resolved here, so an unknown
// one fails when the template is parsed.
#include <algorithm>
#include <set>

#include "jinja_internal.h"
#include "unicode.h"

namespace palign::runtime::jinja {

namespace {

constexpr int kMaxNesting = 200;  // expression and block nesting; deeper sources are rejected, not overflowed

ExprPtr make_expr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

StmtPtr make_stmt(StmtKind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::kData:
      return "template data";
    case Tok::kVarBegin:
      return "begin of print statement";
    case Tok::kVarEnd:
      return "end of print statement";
    case Tok::kBlockBegin:
      return "begin of statement block";
    case Tok::kBlockEnd:
      return "end of statement block";
    case Tok::kString:
      return "string";
    case Tok::kInteger:
    case Tok::kFloat:
      return t.text;
    case Tok::kEof:
      return "end of template";
    default:
      return t.text;
  }
}

const std::set<std::string, std::less<>> kUnsupportedTags = {"block",  "extends", "include",
                                                             "import", "from",    "autoescape"};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse_template() { return subparse({}); }

 private:
  // Token stream.
  const Token& cur() const { return toks_[pos_]; }
  const Token& look() const { return toks_[std::min(pos_ + 1, toks_.size() - 1)]; }
  const Token& next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool is_name(std::string_view v) const { return cur().type == Tok::kName && cur().text == v; }
  bool is_op(std::string_view v) const { return cur().type == Tok::kOp && cur().text == v; }
  bool skip_name(std::string_view v) {
    if (!is_name(v)) return false;
    next();
    return true;
  }
  bool skip_op(std::string_view v) {
    if (!is_op(v)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view v) {
    if (!skip_op(v)) syntax_error(cur().line, "expected '" + std::string(v) + "', got '" + describe(cur()) + "'");
  }
  const Token& expect_name() {
    if (cur().type != Tok::kName) syntax_error(cur().line, "expected a name, got '" + describe(cur()) + "'");
    return next();
  }
  void expect_name(std::string_view v) {
    if (!skip_name(v)) syntax_error(cur().line, "expected '" + std::string(v) + "', got '" + describe(cur()) + "'");
  }
  void expect(Tok type, std::string_view what) {
    if (cur().type != type)
      syntax_error(cur().line, "expected " + std::string(what) + ", got '" + describe(cur()) + "'");
    next();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting) {
        syntax_error(parser.cur().line,
                     "the template nests expressions or blocks more than " + std::to_string(kMaxNesting) + " deep");
      }
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  // Statements.
  Body subparse(const std::vector<std::string_view>& end_tokens) {
    DepthGuard guard(*this);
    Body body;
    while (cur().type != Tok::kEof) {
      const Token& t = cur();
      if (t.type == Tok::kData) {
        auto s = make_stmt(StmtKind::kText, t.line);
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::kVarBegin) {
        const int line = next().line;
        auto s = make_stmt(StmtKind::kOutput, line);
        s->exprs.push_back(parse_tuple(false, true, {}, false, false));
        expect(Tok::kVarEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == Tok::kBlockBegin) {
        next();
        if (cur().type == Tok::kName &&
            std::find(end_tokens.begin(), end_tokens.end(), cur().text) != end_tokens.end()) {
          return body;
        }
        parse_statement(body);
        expect(Tok::kBlockEnd, "'%}'");
      } else {
        syntax_error(t.line, "unexpected '" + describe(t) + "'");
      }
    }
    return body;
  }

  Body parse_statements(const std::vector<std::string_view>& end_tokens, bool drop_needle, const std::string& tag,
                        int tag_line) {
    skip_op(":");
    expect(Tok::kBlockEnd, "'%}'");
    Body body = subparse(end_tokens);
    if (cur().type == Tok::kEof) {
      std::string wanted;
      for (std::string_view e : end_tokens) wanted += (wanted.empty() ? "'" : " or '") + std::string(e) + "'";
      syntax_error(tag_line, "unexpected end of template: the '" + tag + "' block opened here needs " + wanted);
    }
    if (drop_needle) next();
    return body;
  }

  void parse_statement(Body& out) {
    const Token& t = cur();
    if (t.type != Tok::kName) syntax_error(t.line, "tag name expected, got '" + describe(t) + "'");
    const std::string tag = t.text;
    const int line = t.line;
    if (tag == "for") return out.push_back(parse_for());
    if (tag == "if") return out.push_back(parse_if());
    if (tag == "set") return out.push_back(parse_set());
    if (tag == "macro") return out.push_back(parse_macro());
    if (tag == "call") return out.push_back(parse_call_block());
    if (tag == "filter") return out.push_back(parse_filter_block());
    if (tag == "with") return out.push_back(parse_with());
    if (tag == "generation") {
      next();
      auto s = make_stmt(StmtKind::kGeneration, line);
      s->bodies.push_back(parse_statements({"endgeneration"}, true, tag, line));
      return out.push_back(std::move(s));
    }
    if (tag == "print") {
      next();
      auto s = make_stmt(StmtKind::kOutput, line);
      while (cur().type != Tok::kBlockEnd) {
        if (!s->exprs.empty()) expect_op(",");
        s->exprs.push_back(parse_expression(true));
      }
      return out.push_back(std::move(s));
    }
    if (tag == "break" || tag == "continue") {
      next();
      if (loop_depth_ == 0) syntax_error(line, "'" + tag + "' outside of a for loop");
      return out.push_back(make_stmt(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, line));
    }
    if (kUnsupportedTags.count(tag)) {
      unsupported_at(line, "'{% " + tag +
                               " %}' is not supported: palign renders one self-contained chat template (no "
                               "inheritance, includes, imports or autoescape blocks)");
    }
    if (tag.rfind("end", 0) == 0 || tag == "else" || tag == "elif") {
      syntax_error(line, "unexpected '{% " + tag + " %}' (no open block it closes)");
    }
    unsupported_at(line, "unknown tag '{% " + tag + " %}' (not in palign's Jinja subset)");
  }

  StmtPtr parse_for() {
    const int line = next().line;
    auto s = make_stmt(StmtKind::kFor, line);
    s->target = parse_assign_target(true, false, {"in"}, false);
    expect_name("in");
    s->value = parse_tuple(false, false, {"recursive"}, false, false);
    if (skip_name("if")) s->condition = parse_expression(true);
    if (is_name("recursive")) unsupported_at(line, "recursive for loops ('for ... recursive') are not supported");
    ++loop_depth_;
    s->bodies.push_back(parse_statements({"endfor", "else"}, false, "for", line));
    --loop_depth_;
    if (next().text == "endfor") {
      s->bodies.emplace_back();
    } else {
      s->has_else = true;
      s->bodies.push_back(parse_statements({"endfor"}, true, "for", line));
    }
    return s;
  }

  StmtPtr parse_if() {
    const int line = next().line;
    auto s = make_stmt(StmtKind::kIf, line);
    while (true) {
      s->exprs.push_back(parse_tuple(false, false, {}, false, false));
      s->bodies.push_back(parse_statements({"elif", "else", "endif"}, false, "if", line));
      const std::string tok = next().text;
      if (tok == "elif") continue;
      if (tok == "else") {
        s->has_else = true;
        s->bodies.push_back(parse_statements({"endif"}, true, "if", line));
      }
      break;
    }
    return s;
  }

  StmtPtr parse_set() {
    const int line = next().line;
    ExprPtr target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      auto s = make_stmt(StmtKind::kSet, line);
      s->target = std::move(target);
      s->value = parse_tuple(false, true, {}, false, false);
      return s;
    }
    auto s = make_stmt(StmtKind::kSetBlock, line);
    s->target = std::move(target);
    if (is_op("|")) s->filter = parse_filter(nullptr, false);
    s->bodies.push_back(parse_statements({"endset"}, true, "set", line));
    return s;
  }

  void parse_signature(MacroDef& def) {
    expect_op("(");
    while (!is_op(")")) {
      if (!def.params.empty()) expect_op(",");
      if (is_op(")")) break;
      const Token& name = expect_name();
      def.params.push_back(name.text);
      if (skip_op("=")) {
        def.defaults.push_back(parse_expression(true));
      } else if (name.text == "caller") {
        syntax_error(name.line, "the special 'caller' argument of a macro must be omitted or be given a default");
      } else if (!def.defaults.empty()) {
        syntax_error(cur().line, "non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  // Parses a macro or caller body, noting which of caller / varargs / kwargs it refers to.
  void parse_macro_body(MacroDef& def, std::string_view end, const std::string& tag) {
    std::set<std::string> names;
    macro_names_.push_back(&names);
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    def.body = parse_statements({end}, true, tag, def.line);
    loop_depth_ = saved_loop_depth;
    macro_names_.pop_back();
    def.uses_caller = names.count("caller") > 0;
    def.uses_varargs = names.count("varargs") > 0;
    def.uses_kwargs = names.count("kwargs") > 0;
  }

  StmtPtr parse_macro() {
    const int line = next().line;
    auto def = std::make_shared<MacroDef>();
    def->line = line;
    def->name = expect_name().text;
    parse_signature(*def);
    parse_macro_body(*def, "endmacro", "macro");
    auto s = make_stmt(StmtKind::kMacro, line);
    s->macro = std::move(def);
    return s;
  }

  StmtPtr parse_call_block() {
    const int line = next().line;
    auto def = std::make_shared<MacroDef>();
    def->line = line;
    def->name = "caller";
    if (is_op("(")) parse_signature(*def);
    auto s = make_stmt(StmtKind::kCallBlock, line);
    s->value = parse_expression(true);
    if (s->value->kind != ExprKind::kCall) syntax_error(line, "'{% call %}' expects a macro call");
    parse_macro_body(*def, "endcall", "call");
    s->macro = std::move(def);
    return s;
  }

  StmtPtr parse_filter_block() {
    const int line = next().line;
    auto s = make_stmt(StmtKind::kFilterBlock, line);
    s->filter = parse_filter(nullptr, true);
    s->bodies.push_back(parse_statements({"endfilter"}, true, "filter", line));
    return s;
  }

  StmtPtr parse_with() {
    const int line = next().line;
    auto s = make_stmt(StmtKind::kWith, line);
    while (cur().type != Tok::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, {}, false));
      expect_op("=");
      s->exprs.push_back(parse_expression(true));
    }
    s->bodies.push_back(parse_statements({"endwith"}, true, "with", line));
    return s;
  }

  static bool assignable(const Expr& e) {
    if (e.kind == ExprKind::kName || e.kind == ExprKind::kNsRef) return true;
    if (e.kind != ExprKind::kTuple) return false;
    return std::all_of(e.children.begin(), e.children.end(), [](const ExprPtr& c) { return assignable(*c); });
  }

  ExprPtr parse_assign_target(bool with_tuple, bool name_only, const std::vector<std::string_view>& extra_end,
                              bool with_namespace) {
    ExprPtr target;
    if (name_only) {
      const Token& t = expect_name();
      target = make_expr(ExprKind::kName, t.line);
      target->name = t.text;
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end, false, with_namespace);
    } else {
      target = parse_primary(with_namespace);
    }
    if (!assignable(*target)) syntax_error(target->line, "can't assign to this expression");
    return target;
  }

  // Expressions.
  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      ExprPtr expr2 = parse_or();
      ExprPtr expr3 = skip_name("else") ? parse_condexpr() : nullptr;
      auto e = make_expr(ExprKind::kCond, line);
      e->children.push_back(std::move(expr1));
      e->children.push_back(std::move(expr2));
      e->children.push_back(std::move(expr3));
      expr1 = std::move(e);
      line = cur().line;
    }
    return expr1;
  }

  ExprPtr binary(ExprKind kind, ExprPtr left, ExprPtr right, int line, std::string op = {}) {
    auto e = make_expr(kind, line);
    e->name = std::move(op);
    e->children.push_back(std::move(left));
    e->children.push_back(std::move(right));
    return e;
  }

  ExprPtr parse_or() {
    const int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary(ExprKind::kOr, std::move(left), parse_and(), line);
    return left;
  }

  ExprPtr parse_and() {
    const int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary(ExprKind::kAnd, std::move(left), parse_not(), line);
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      const int line = next().line;
      auto e = make_expr(ExprKind::kNot, line);
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const int line = cur().line;
    ExprPtr expr = parse_math1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    static const std::pair<std::string_view, std::string_view> kOps[] = {{"==", "eq"},   {"!=", "ne"}, {"<", "lt"},
                                                                         {"<=", "lteq"}, {">", "gt"},  {">=", "gteq"}};
    while (true) {
      std::string op;
      if (cur().type == Tok::kOp) {
        for (const auto& [tok, name] : kOps) {
          if (cur().text == tok) op = name;
        }
        if (!op.empty()) next();
      }
      if (op.empty() && skip_name("in")) op = "in";
      if (op.empty() && is_name("not") && look().type == Tok::kName && look().text == "in") {
        next();
        next();
        op = "notin";
      }
      if (op.empty()) break;
      ops.push_back(op);
      operands.push_back(parse_math1());
    }
    if (ops.empty()) return expr;
    auto e = make_expr(ExprKind::kCompare, line);
    e->children.push_back(std::move(expr));
    for (auto& o : operands) e->children.push_back(std::move(o));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr parse_math1() {
    const int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = next().text;
      left = binary(ExprKind::kBinary, std::move(left), parse_concat(), line, op);
    }
    return left;
  }

  ExprPtr parse_concat() {
    const int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = make_expr(ExprKind::kConcat, line);
    e->children.push_back(std::move(first));
    while (skip_op("~")) e->children.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    const int line = cur().line;
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().text;
      left = binary(ExprKind::kBinary, std::move(left), parse_pow(), line, op);
    }
    return left;
  }

  ExprPtr parse_pow() {
    const int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = binary(ExprKind::kBinary, std::move(left), parse_unary(true), line, "**");
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const int line = cur().line;
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const bool neg = next().text == "-";
      node = make_expr(neg ? ExprKind::kNeg : ExprKind::kPos, line);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary(false);
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary(bool with_namespace) {
    DepthGuard guard(*this);
    const Token& t = cur();
    const int line = t.line;
    if (t.type == Tok::kName) {
      const std::string name = next().text;
      if (name == "true" || name == "false" || name == "True" || name == "False") {
        auto e = make_expr(ExprKind::kLiteral, line);
        e->literal = Value::boolean(name == "true" || name == "True");
        return e;
      }
      if (name == "none" || name == "None") {
        auto e = make_expr(ExprKind::kLiteral, line);
        e->literal = Value::none();
        return e;
      }
      if (with_namespace && is_op(".")) {
        next();
        auto e = make_expr(ExprKind::kNsRef, line);
        e->name = name;
        e->attr = expect_name().text;
        return e;
      }
      for (auto* names : macro_names_) names->insert(name);
      auto e = make_expr(ExprKind::kName, line);
      e->name = name;
      return e;
    }
    if (t.type == Tok::kString) {
      std::string value;
      while (cur().type == Tok::kString) value += next().text;
      auto e = make_expr(ExprKind::kLiteral, line);
      e->literal = Value::string(std::move(value));
      return e;
    }
    if (t.type == Tok::kInteger || t.type == Tok::kFloat) {
      auto e = make_expr(ExprKind::kLiteral, line);
      e->literal = t.type == Tok::kInteger ? Value::integer(t.int_value) : Value::number(t.float_value);
      next();
      return e;
    }
    if (is_op("(")) {
      next();
      ExprPtr e = parse_tuple(false, true, {}, true, false);
      expect_op(")");
      return e;
    }
    if (is_op("[")) {
      next();
      auto e = make_expr(ExprKind::kList, line);
      while (!is_op("]")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("]")) break;
        e->children.push_back(parse_expression(true));
      }
      expect_op("]");
      return e;
    }
    if (is_op("{")) {
      next();
      auto e = make_expr(ExprKind::kDict, line);
      while (!is_op("}")) {
        if (!e->children.empty()) expect_op(",");
        if (is_op("}")) break;
        e->children.push_back(parse_expression(true));
        expect_op(":");
        e->children.push_back(parse_expression(true));
      }
      expect_op("}");
      return e;
    }
    syntax_error(line, "unexpected '" + describe(t) + "'");
  }

  bool is_tuple_end(const std::vector<std::string_view>& extra_end) const {
    if (cur().type == Tok::kVarEnd || cur().type == Tok::kBlockEnd || is_op(")")) return true;
    return cur().type == Tok::kName && std::find(extra_end.begin(), extra_end.end(), cur().text) != extra_end.end();
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string_view>& extra_end,
                      bool explicit_parentheses, bool with_namespace) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary(with_namespace) : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
      line = cur().line;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) syntax_error(cur().line, "expected an expression, got '" + describe(cur()) + "'");
    }
    auto e = make_expr(ExprKind::kTuple, line);
    e->children = std::move(args);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filter(std::move(node), false);
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& tok = next();
    const int line = tok.line;
    if (tok.text == ".") {
      const Token& attr = next();
      if (attr.type == Tok::kName) {
        auto e = make_expr(ExprKind::kAttr, line);
        e->name = attr.text;
        e->children.push_back(std::move(node));
        return e;
      }
      if (attr.type != Tok::kInteger) syntax_error(attr.line, "expected a name or number after '.'");
      auto key = make_expr(ExprKind::kLiteral, attr.line);
      key->literal = Value::integer(attr.int_value);
      auto e = make_expr(ExprKind::kItem, line);
      e->children.push_back(std::move(node));
      e->children.push_back(std::move(key));
      return e;
    }
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.size() == 1 && args[0]->kind == ExprKind::kSlice) {
      args[0]->children[0] = std::move(node);
      return std::move(args[0]);
    }
    auto e = make_expr(ExprKind::kItem, line);
    e->children.push_back(std::move(node));
    if (args.size() == 1) {
      e->children.push_back(std::move(args[0]));
    } else {
      for (const auto& a : args) {
        if (a->kind == ExprKind::kSlice) unsupported_at(line, "multi-dimensional slicing is not supported");
      }
      auto tuple = make_expr(ExprKind::kTuple, line);
      tuple->children = std::move(args);
      e->children.push_back(std::move(tuple));
    }
    return e;
  }

  ExprPtr parse_subscribed() {
    const int line = cur().line;
    std::vector<ExprPtr> args;
    if (skip_op(":")) {
      args.push_back(nullptr);
    } else {
      ExprPtr node = parse_expression(true);
      if (!skip_op(":")) return node;
      args.push_back(std::move(node));
    }
    if (is_op(":")) {
      args.push_back(nullptr);
    } else if (!is_op("]") && !is_op(",")) {
      args.push_back(parse_expression(true));
    } else {
      args.push_back(nullptr);
    }
    if (skip_op(":")) {
      args.push_back(!is_op("]") && !is_op(",") ? parse_expression(true) : nullptr);
    } else {
      args.push_back(nullptr);
    }
    auto e = make_expr(ExprKind::kSlice, line);
    e->children.push_back(nullptr);  // the sliced object, set by parse_subscript
    for (auto& a : args) e->children.push_back(std::move(a));
    return e;
  }

  void parse_call_args(Expr& node) {
    const int line = cur().line;
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (skip_op("*")) {
        if (node.star_args || node.star_kwargs) syntax_error(line, "invalid syntax for function call expression");
        node.star_args = parse_expression(true);
      } else if (skip_op("**")) {
        if (node.star_kwargs) syntax_error(line, "invalid syntax for function call expression");
        node.star_kwargs = parse_expression(true);
      } else if (cur().type == Tok::kName && look().type == Tok::kOp && look().text == "=") {
        if (node.star_kwargs) syntax_error(line, "invalid syntax for function call expression");
        const std::string key = next().text;
        next();
        node.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (node.star_args || node.star_kwargs || !node.kwargs.empty()) {
          syntax_error(line,
                       "invalid syntax for function call expression (a positional argument follows a keyword "
                       "argument)");
        }
        node.children.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr node) {
    auto e = make_expr(ExprKind::kCall, cur().line);
    e->children.push_back(std::move(node));
    parse_call_args(*e);
    return e;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name().text;
    while (skip_op(".")) name += "." + expect_name().text;
    return name;
  }

  ExprPtr parse_filter(ExprPtr node, bool start_inline) {
    while (is_op("|") || start_inline) {
      if (!start_inline) next();
      const int line = cur().line;
      const std::string name = parse_dotted_name();
      auto e = make_expr(ExprKind::kFilter, line);
      e->name = name;
      e->filter = find_filter(name);
      if (!e->filter) {
        unsupported_at(line,
                       "unknown filter '" + name +
                           "' (not in palign's Jinja subset; the filters are listed in src/runtime/jinja_filters.cpp)");
      }
      e->children.push_back(std::move(node));
      if (is_op("(")) parse_call_args(*e);
      node = std::move(e);
      start_inline = false;
    }
    return node;
  }

  ExprPtr parse_test(ExprPtr node) {
    const int line = next().line;  // 'is'
    const bool negated = skip_name("not");
    const int name_line = cur().line;
    const std::string name = parse_dotted_name();
    auto e = make_expr(ExprKind::kTest, line);
    e->name = name;
    e->test = find_test(name);
    if (!e->test) {
      unsupported_at(name_line,
                     "unknown test '" + name +
                         "' (not in palign's Jinja subset; the tests are listed in src/runtime/jinja_filters.cpp)");
    }
    e->children.push_back(std::move(node));
    const Token& t = cur();
    if (is_op("(")) {
      parse_call_args(*e);
    } else if ((t.type == Tok::kName || t.type == Tok::kString || t.type == Tok::kInteger || t.type == Tok::kFloat ||
                is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) syntax_error(t.line, "you cannot chain multiple tests with 'is'");
      e->children.push_back(parse_postfix(parse_primary(false)));
    }
    if (!negated) return e;
    auto n = make_expr(ExprKind::kNot, line);
    n->children.push_back(std::move(e));
    return n;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<std::set<std::string>*> macro_names_;
};

}  // namespace

std::shared_ptr<const Program> parse_program(std::string_view source) {
  if (const auto bad = unicode::find_invalid_utf8(source)) {
    PALIGN_THROW(ErrorCode::kInvalidArgument, "[runtime.jinja] the template is not valid UTF-8 (byte ", *bad, ")");
  }
  // jinja2 normalises \r\n and \r to \n, then drops one trailing newline (keep_trailing_newline=False).
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      text.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      text.push_back(source[i]);
    }
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  auto program = std::make_shared<Program>();
  program->body = Parser(lex(std::move(text))).parse_template();
  return program;
}

}  // namespace palign::runtime::jinja

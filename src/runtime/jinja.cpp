// The Jinja interpreter's renderer (jinja.h): walks the syntax tree of jinja_parser.cpp with jinja2's scoping rules.
// A for loop's body runs in a fresh scope per iteration (a {% set %} inside it is gone at the next iteration and
// after the loop), macros and call blocks run in a scope over the one they were defined in, {% if %} opens none;
// namespace() objects are the way to carry state out of a loop, as in jinja2.
#include "jinja.h"

#include "jinja_internal.h"

namespace palign::runtime::jinja {

namespace {

struct Scope;
using ScopePtr = std::shared_ptr<Scope>;

struct Scope {
  explicit Scope(ScopePtr p) : parent(std::move(p)) {}
  ScopePtr parent;
  std::vector<std::pair<std::string, Value>> vars;

  Value* find(const std::string& name) {
    for (Scope* s = this; s; s = s->parent.get()) {
      for (auto& [k, v] : s->vars) {
        if (k == name) return &v;
      }
    }
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }
};

[[noreturn]] void rethrow_with_line(const Failure& f, int line) {
  const std::string where = "[runtime.jinja] line " + std::to_string(line) + ": ";
  switch (f.kind) {
    case FailureKind::kUnsupported:
      throw Error(ErrorCode::kUnsupported, where + f.message + " is not supported");
    case FailureKind::kRaised:
      throw Error(ErrorCode::kInvalidArgument, where + "the template raised an error: " + f.message);
    case FailureKind::kRuntime:
      break;
  }
  throw Error(ErrorCode::kInvalidArgument, where + f.message);
}

class Renderer;

class Macro : public Object {
 public:
  Macro(std::shared_ptr<const MacroDef> def, ScopePtr closure) : def_(std::move(def)), closure_(std::move(closure)) {}
  std::string type_name() const override { return "Macro"; }
  std::string object_type_repr() const override { return "jinja2.runtime.Macro object"; }
  std::string str() const override { return "<Macro " + repr_string(def_->name) + ">"; }
  Value attr(const std::string& name) const override {
    if (name == "name") return Value::string(def_->name);
    return Object::attr(name);
  }
  bool callable() const override { return true; }
  Value call(Interpreter& interp, Args args) override;

 private:
  std::shared_ptr<const MacroDef> def_;
  ScopePtr closure_;
};

// The state loop.changed() keeps across iterations.
struct LoopState {
  std::vector<Value> items;
  std::optional<Value> last_changed;
};

class LoopContext : public Object {
 public:
  LoopContext(std::shared_ptr<LoopState> state, size_t index0) : state_(std::move(state)), index0_(index0) {}
  std::string type_name() const override { return "LoopContext"; }
  std::string object_type_repr() const override { return "jinja2.runtime.LoopContext object"; }
  std::string str() const override {
    return "<LoopContext " + std::to_string(index0_ + 1) + "/" + std::to_string(state_->items.size()) + ">";
  }
  Value attr(const std::string& name) const override {
    const auto n = static_cast<int64_t>(state_->items.size());
    const auto i = static_cast<int64_t>(index0_);
    if (name == "index0") return Value::integer(i);
    if (name == "index") return Value::integer(i + 1);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(1);
    if (name == "depth0") return Value::integer(0);
    if (name == "previtem") {
      return i > 0 ? state_->items[index0_ - 1] : Value::undefined("there is no previous item");
    }
    if (name == "nextitem") return i + 1 < n ? state_->items[index0_ + 1] : Value::undefined("there is no next item");
    if (name == "cycle" || name == "changed") {
      return Value::object(std::make_shared<LoopMethod>(state_, index0_, name == "cycle"));
    }
    return Object::attr(name);
  }

 private:
  class LoopMethod : public Object {
   public:
    LoopMethod(std::shared_ptr<LoopState> state, size_t index0, bool cycle)
        : state_(std::move(state)), index0_(index0), cycle_(cycle) {}
    std::string type_name() const override { return "method"; }
    bool callable() const override { return true; }
    Value call(Interpreter&, Args args) override {
      if (!args.keyword.empty())
        fail("loop." + std::string(cycle_ ? "cycle" : "changed") + "() takes no keyword arguments");
      if (cycle_) {
        if (args.positional.empty()) fail("no items for cycling given");
        return args.positional[index0_ % args.positional.size()];
      }
      const Value now = Value::list(std::move(args.positional), ListData::Kind::kTuple);
      if (state_->last_changed && equal(*state_->last_changed, now)) return Value::boolean(false);
      state_->last_changed = now;
      return Value::boolean(true);
    }

   private:
    std::shared_ptr<LoopState> state_;
    size_t index0_;
    bool cycle_;
  };

  std::shared_ptr<LoopState> state_;
  size_t index0_;
};

enum class Flow { kNormal, kBreak, kContinue };

class Renderer final : public Interpreter {
 public:
  explicit Renderer(const RenderOptions& options) : options_(options) {}

  std::string run(const Program& program, const nlohmann::ordered_json& context) {
    PALIGN_CHECK(context.is_object(), ErrorCode::kInvalidArgument,
                 "[runtime.jinja] the render context must be a JSON object, got ", context.type_name());
    auto root = std::make_shared<Scope>(nullptr);
    for (const auto& [key, value] : context.items()) {
      try {
        root->set(key, from_json(&value));
      } catch (const Failure& f) {
        throw Error(f.kind == FailureKind::kUnsupported ? ErrorCode::kUnsupported : ErrorCode::kInvalidArgument,
                    "[runtime.jinja] the context variable '" + key + "': " + f.message +
                        (f.kind == FailureKind::kUnsupported ? " is not supported" : ""));
      }
    }
    // A macro holds the scope it was defined in, and that scope holds the macro: a cycle of shared pointers that
    // would leak the scope with every rendering. Once rendering ends no macro can be called, so the scopes that
    // closed over macros are emptied then, whether rendering succeeded or threw.
    struct ReleaseClosures {
      explicit ReleaseClosures(Renderer& r) : r(r) {}
      ~ReleaseClosures() {
        for (const ScopePtr& scope : r.closures_) {
          auto vars = std::move(scope->vars);
          scope->vars.clear();
        }
        r.closures_.clear();
      }
      Renderer& r;
    } release(*this);
    std::string out;
    exec_body(program.body, root, out);
    return out;
  }

  Value call(const Value& callee, Args args) override {
    if (callee.is_undefined()) fail(callee.undefined_message());
    if (!callee.is_object() || !callee.as_object()->callable())
      fail("'" + type_name(callee) + "' object is not callable");
    step();
    return callee.as_object()->call(*this, std::move(args));
  }

  const std::function<std::string(const std::string&)>& strftime_now() const override { return options_.strftime_now; }

  Value call_macro(const MacroDef& def, const ScopePtr& closure, Args args) {
    struct DepthGuard {
      explicit DepthGuard(Renderer& r) : r(r) { ++r.depth_; }
      ~DepthGuard() { --r.depth_; }
      Renderer& r;
    } guard(*this);
    if (depth_ > options_.max_call_depth) {
      fail("the template nests macro calls more than " + std::to_string(options_.max_call_depth) +
           " deep (runaway recursion?)");
    }
    auto scope = std::make_shared<Scope>(closure);
    std::vector<bool> bound(def.params.size(), false);
    std::vector<Value> varargs;
    DictData kwargs;
    Value caller = Value::undefined("No caller defined");
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < def.params.size()) {
        scope->set(def.params[i], std::move(args.positional[i]));
        bound[i] = true;
      } else if (def.uses_varargs) {
        varargs.push_back(std::move(args.positional[i]));
      } else {
        fail("macro " + repr_string(def.name) + " takes not more than " + std::to_string(def.params.size()) +
             " argument(s)");
      }
    }
    for (auto& [key, value] : args.keyword) {
      const auto it = std::find(def.params.begin(), def.params.end(), key);
      if (it != def.params.end()) {
        const size_t i = static_cast<size_t>(it - def.params.begin());
        if (bound[i]) fail("macro " + repr_string(def.name) + " got multiple values for argument " + repr_string(key));
        scope->set(key, std::move(value));
        bound[i] = true;
      } else if (key == "caller" && def.uses_caller) {
        caller = std::move(value);
      } else if (def.uses_kwargs) {
        kwargs.set(Value::string(key), std::move(value));
      } else {
        fail("macro " + repr_string(def.name) + " takes no keyword argument " + repr_string(key));
      }
    }
    const size_t first_default = def.params.size() - def.defaults.size();
    for (size_t i = 0; i < def.params.size(); ++i) {
      if (bound[i]) continue;
      if (i >= first_default) {
        scope->set(def.params[i], eval(*def.defaults[i - first_default], scope));
      } else {
        scope->set(def.params[i], Value::undefined("parameter " + repr_string(def.params[i]) + " was not provided"));
      }
    }
    if (def.uses_varargs) scope->set("varargs", Value::list(std::move(varargs), ListData::Kind::kTuple));
    if (def.uses_kwargs) scope->set("kwargs", Value::dict(std::move(kwargs)));
    if (def.uses_caller) scope->set("caller", std::move(caller));
    std::string out;
    exec_body(def.body, scope, out);
    return Value::string(std::move(out));
  }

 private:
  void step() {
    if (++steps_ > options_.max_steps) {
      fail("the template ran more than " + std::to_string(options_.max_steps) + " steps (runaway loop?)");
    }
  }

  void append(std::string& out, std::string_view text) {
    output_bytes_ += text.size();
    if (output_bytes_ > options_.max_output_bytes) {
      fail("the template rendered more than " + std::to_string(options_.max_output_bytes) + " bytes");
    }
    out += text;
  }

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const StmtPtr& stmt : body) {
      const Flow flow = exec(*stmt, scope, out);
      if (flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    try {
      step();
      return exec_inner(stmt, scope, out);
    } catch (const Failure& f) {
      rethrow_with_line(f, stmt.line);
    }
  }

  std::string capture(const Body& body, const ScopePtr& scope) {
    std::string buf;
    exec_body(body, std::make_shared<Scope>(scope), buf);
    return buf;
  }

  Value apply_filter_chain(const Expr& filter, Value input, const ScopePtr& scope) {
    Value operand = filter.children[0] ? apply_filter_chain(*filter.children[0], std::move(input), scope) : input;
    try {
      return filter.filter(*this, operand, eval_args(filter, scope, 1));
    } catch (const Failure& f) {
      rethrow_with_line(f, filter.line);
    }
  }

  Flow exec_inner(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    switch (stmt.kind) {
      case StmtKind::kText:
        append(out, stmt.text);
        return Flow::kNormal;
      case StmtKind::kOutput:
        for (const ExprPtr& e : stmt.exprs) append(out, to_str(eval(*e, scope)));
        return Flow::kNormal;
      case StmtKind::kIf:
        for (size_t i = 0; i < stmt.exprs.size(); ++i) {
          if (truthy(eval(*stmt.exprs[i], scope))) return exec_body(stmt.bodies[i], scope, out);
        }
        if (stmt.has_else) return exec_body(stmt.bodies.back(), scope, out);
        return Flow::kNormal;
      case StmtKind::kFor:
        return exec_for(stmt, scope, out);
      case StmtKind::kSet:
        assign(*stmt.target, eval(*stmt.value, scope), scope);
        return Flow::kNormal;
      case StmtKind::kSetBlock: {
        Value v = Value::string(capture(stmt.bodies[0], scope));
        if (stmt.filter) v = apply_filter_chain(*stmt.filter, std::move(v), scope);
        assign(*stmt.target, std::move(v), scope);
        return Flow::kNormal;
      }
      case StmtKind::kMacro:
        closures_.push_back(scope);
        scope->set(stmt.macro->name, Value::object(std::make_shared<Macro>(stmt.macro, scope)));
        return Flow::kNormal;
      case StmtKind::kCallBlock: {
        const Expr& call_expr = *stmt.value;
        const Value callee = eval(*call_expr.children[0], scope);
        Args args = eval_args(call_expr, scope, 1);
        closures_.push_back(scope);
        args.keyword.emplace_back("caller", Value::object(std::make_shared<Macro>(stmt.macro, scope)));
        append(out, to_str(call(callee, std::move(args))));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock:
        append(out, to_str(apply_filter_chain(*stmt.filter, Value::string(capture(stmt.bodies[0], scope)), scope)));
        return Flow::kNormal;
      case StmtKind::kWith: {
        std::vector<Value> values;
        for (const ExprPtr& e : stmt.exprs) values.push_back(eval(*e, scope));
        auto inner = std::make_shared<Scope>(scope);
        for (size_t i = 0; i < values.size(); ++i) assign(*stmt.targets[i], std::move(values[i]), inner);
        return exec_body(stmt.bodies[0], inner, out);
      }
      case StmtKind::kGeneration:
        append(out, capture(stmt.bodies[0], scope));
        return Flow::kNormal;
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  Flow exec_for(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
    auto state = std::make_shared<LoopState>();
    for (Value& item : iterate(eval(*stmt.value, scope))) {
      if (stmt.condition) {
        auto probe = std::make_shared<Scope>(scope);
        assign(*stmt.target, item, probe);
        if (!truthy(eval(*stmt.condition, probe))) continue;
      }
      state->items.push_back(std::move(item));
    }
    for (size_t i = 0; i < state->items.size(); ++i) {
      step();
      auto inner = std::make_shared<Scope>(scope);
      assign(*stmt.target, state->items[i], inner);
      inner->set("loop", Value::object(std::make_shared<LoopContext>(state, i)));
      if (exec_body(stmt.bodies[0], inner, out) == Flow::kBreak) break;
    }
    if (state->items.empty() && stmt.has_else) exec_body(stmt.bodies[1], std::make_shared<Scope>(scope), out);
    return Flow::kNormal;
  }

  void assign(const Expr& target, Value value, const ScopePtr& scope) {
    switch (target.kind) {
      case ExprKind::kName:
        scope->set(target.name, std::move(value));
        return;
      case ExprKind::kNsRef: {
        Value* ns = scope->find(target.name);
        Namespace* obj = ns && ns->is_object() ? dynamic_cast<Namespace*>(ns->as_object().get()) : nullptr;
        if (!obj) fail("cannot assign attribute on non-namespace object");
        obj->set(target.attr, std::move(value));
        return;
      }
      case ExprKind::kTuple: {
        std::vector<Value> items = iterate(value);
        const size_t want = target.children.size();
        if (items.size() < want) {
          fail("not enough values to unpack (expected " + std::to_string(want) + ", got " +
               std::to_string(items.size()) + ")");
        }
        if (items.size() > want) fail("too many values to unpack (expected " + std::to_string(want) + ")");
        for (size_t i = 0; i < want; ++i) assign(*target.children[i], std::move(items[i]), scope);
        return;
      }
      default:
        fail("cannot assign to this expression");
    }
  }

  Args eval_args(const Expr& e, const ScopePtr& scope, size_t first) {
    Args args;
    for (size_t i = first; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], scope));
    if (e.star_args) {
      for (Value& v : iterate(eval(*e.star_args, scope))) args.positional.push_back(std::move(v));
    }
    for (const auto& [key, expr] : e.kwargs) args.keyword.emplace_back(key, eval(*expr, scope));
    if (e.star_kwargs) {
      const Value d = eval(*e.star_kwargs, scope);
      if (!d.is_dict()) fail("argument after ** must be a mapping, not " + type_name(d));
      for (const auto& [k, v] : d.as_dict().items) {
        if (!k.is_string()) fail("keywords must be strings");
        args.keyword.emplace_back(k.as_string(), v);
      }
    }
    return args;
  }

  Value lookup(const std::string& name, const ScopePtr& scope) {
    if (Value* v = scope->find(name)) return *v;
    if (auto g = find_global(*this, name)) return *g;
    return Value::undefined(repr_string(name) + " is undefined");
  }

  bool compare(const std::string& op, const Value& a, const Value& b) {
    if (op == "eq") return equal(a, b);
    if (op == "ne") return !equal(a, b);
    if (op == "lt") return less(a, b, "<");
    if (op == "lteq") return equal(a, b) ? (less(a, b, "<="), true) : less(a, b, "<=");
    if (op == "gt") return less(b, a, ">");
    if (op == "gteq") return equal(a, b) ? (less(b, a, ">="), true) : less(b, a, ">=");
    if (op == "in") return contains(b, a);
    return !contains(b, a);  // notin
  }

  Value eval(const Expr& e, const ScopePtr& scope) {
    try {
      return eval_inner(e, scope);
    } catch (const Failure& f) {
      rethrow_with_line(f, e.line);
    }
  }

  Value eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.literal;
      case ExprKind::kName:
        return lookup(e.name, scope);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        std::vector<Value> items;
        for (const ExprPtr& c : e.children) items.push_back(eval(*c, scope));
        return Value::list(std::move(items),
                           e.kind == ExprKind::kTuple ? ListData::Kind::kTuple : ListData::Kind::kList);
      }
      case ExprKind::kDict: {
        DictData d;
        for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
          Value key = eval(*e.children[i], scope);
          d.set(std::move(key), eval(*e.children[i + 1], scope));
        }
        return Value::dict(std::move(d));
      }
      case ExprKind::kAttr:
        return get_attr(eval(*e.children[0], scope), e.name);
      case ExprKind::kItem: {
        const Value obj = eval(*e.children[0], scope);
        return get_item(obj, eval(*e.children[1], scope));
      }
      case ExprKind::kSlice: {
        auto part = [&](size_t i) { return e.children[i] ? eval(*e.children[i], scope) : Value::none(); };
        const Value obj = eval(*e.children[0], scope);
        const Value start = part(1), stop = part(2), step_value = part(3);
        return slice(obj, start, stop, step_value);
      }
      case ExprKind::kCall: {
        const Value callee = eval(*e.children[0], scope);
        return call(callee, eval_args(e, scope, 1));
      }
      case ExprKind::kFilter: {
        const Value value = eval(*e.children[0], scope);
        return e.filter(*this, value, eval_args(e, scope, 1));
      }
      case ExprKind::kTest: {
        const Value value = eval(*e.children[0], scope);
        return Value::boolean(e.test(*this, value, eval_args(e, scope, 1)));
      }
      case ExprKind::kNeg:
        return negate(eval(*e.children[0], scope));
      case ExprKind::kPos: {
        Value v = eval(*e.children[0], scope);
        if (v.is_undefined()) fail(v.undefined_message());
        if (!v.is_number()) fail("bad operand type for unary +: '" + type_name(v) + "'");
        return v.is_bool() ? Value::integer(v.as_int()) : v;
      }
      case ExprKind::kNot:
        return Value::boolean(!truthy(eval(*e.children[0], scope)));
      case ExprKind::kAnd: {
        Value left = eval(*e.children[0], scope);
        return truthy(left) ? eval(*e.children[1], scope) : left;
      }
      case ExprKind::kOr: {
        Value left = eval(*e.children[0], scope);
        return truthy(left) ? left : eval(*e.children[1], scope);
      }
      case ExprKind::kBinary: {
        const Value a = eval(*e.children[0], scope);
        return binary_op(e.name, a, eval(*e.children[1], scope));
      }
      case ExprKind::kConcat: {
        std::string out;
        for (const ExprPtr& c : e.children) out += to_str(eval(*c, scope));
        return Value::string(std::move(out));
      }
      case ExprKind::kCompare: {
        Value left = eval(*e.children[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.children[i + 1], scope);
          if (!compare(e.ops[i], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case ExprKind::kCond:
        if (truthy(eval(*e.children[1], scope))) return eval(*e.children[0], scope);
        if (e.children[2]) return eval(*e.children[2], scope);
        return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                                " evaluated to false and no else section was defined.");
      case ExprKind::kNsRef:
        fail("a namespace attribute reference is only valid as an assignment target");
    }
    fail("internal: unknown expression kind");
  }

  const RenderOptions& options_;
  int depth_ = 0;
  std::vector<ScopePtr> closures_;  // the scopes macros were defined in (emptied when rendering ends)
  int64_t steps_ = 0;
  size_t output_bytes_ = 0;
};

Value Macro::call(Interpreter& interp, Args args) {
  return static_cast<Renderer&>(interp).call_macro(*def_, closure_, std::move(args));
}

}  // namespace

Template::Template(std::shared_ptr<const Program> program) : program_(std::move(program)) {}
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;
Template::~Template() = default;

Template Template::parse(std::string_view source) { return Template(parse_program(source)); }

std::string Template::render(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  Renderer renderer(options);
  return renderer.run(*program_, context);
}

}  // namespace palign::runtime::jinja

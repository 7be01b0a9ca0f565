// g++'s -fsanitize-coverage=trace-cmp also reports float comparisons, which libFuzzer does not take: these no-ops
// stand in for them in the targets that link units compiled with g++ (see fuzz/cxx_launcher).
extern "C" {
void __sanitizer_cov_trace_cmpf(float, float) {}
void __sanitizer_cov_trace_cmpd(double, double) {}
}

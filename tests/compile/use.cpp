// tests/compile/use.cpp - compile-matrix program for C++ (C++11 and C++17).
// Includes acem.h with the implementation in a C++ translation unit and uses it
// the way C++ code would. Exits non-zero if anything is off.
#define ACEM_IMPLEMENTATION
#include "acem.h"

#include <cstdio>
#include <cstring>
#include <vector>

namespace {

int bad = 0;

void expect(bool cond, const char *what) {
    if (!cond) {
        std::printf("use.cpp: %s\n", what);
        ++bad;
    }
}

float pattern(std::size_t i, std::size_t t) {
    unsigned h = static_cast<unsigned>(i * 2654435761u + t * 40503u + 12345u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return static_cast<float>(h % 2001u) / 1000.0f - 1.0f;
}

}  // namespace

int main() {
    const std::size_t R = 7, C = 4, T = 3;
    std::vector<float> base(R * C), out(R * C);
    std::vector<std::vector<float> > expert(T, std::vector<float>(R * C));
    std::vector<const float *> experts(T);
    for (std::size_t i = 0; i < R * C; ++i) {
        base[i] = pattern(i, 7);
        for (std::size_t t = 0; t < T; ++t)
            expert[t][i] = base[i] + 0.05f * pattern(i, t + 1);
    }
    for (std::size_t t = 0; t < T; ++t) experts[t] = expert[t].data();

    acem_options opt = acem_options();
    acem_options resolved;
    acem_error err;
    acem_layer_info info;
    expect(acem_options_resolve(&opt, &resolved, &err) == ACEM_OK, "acem_options_resolve");

    for (int m = 0; m < static_cast<int>(ACEM_METHOD_COUNT); ++m) {
        opt.method = static_cast<acem_method>(m);
        std::size_t need = 0;
        if (acem_layer_bytes(&opt, ACEM_RULE_METHOD, R, C, T, &need) != ACEM_OK) {
            expect(false, "acem_layer_bytes");
            continue;
        }
        std::vector<double> arena(need / sizeof(double) + 1);
        acem_result r = acem_merge(&opt, ACEM_RULE_METHOD, "layer.weight", R, C, T,
                                   base.data(), experts.data(), out.data(), arena.data(),
                                   arena.size() * sizeof(double), &info, &err);
        if (r != ACEM_OK) std::printf("%s: %s\n", acem_method_name(opt.method), err.message);
        expect(r == ACEM_OK, "acem_merge");
    }

    float A[4] = {1, 2, 3, 4}, I2[4] = {1, 0, 0, 1}, Cm[4] = {0, 0, 0, 0};
    acem_gemm(0, 0, 2, 2, 2, 1.0f, A, 2, I2, 2, 0.0f, Cm, 2, nullptr);
    expect(std::memcmp(A, Cm, sizeof A) == 0, "acem_gemm by the identity");
    expect(acem_f32_to_f16(1.0f) == 0x3c00, "f32 -> f16");
    expect(acem_regex_search("lm_head", "model.lm_head.weight") != 0, "regex");
    expect(acem_method_from_name("ties") == ACEM_TIES, "method name");
#ifndef ACEM_NO_MALLOC
    expect(acem_merge_alloc(&opt, ACEM_RULE_METHOD, "layer.weight", R, C, T, base.data(),
                            experts.data(), out.data(), &info, &err) == ACEM_OK,
           "acem_merge_alloc");
#endif
    std::printf("use.cpp: %s\n", bad ? "FAILED" : "ok");
    return bad != 0;
}

/*
 * check_sha256.c — platform_sha256_hex keeps its contract now that Nettle
 * computes it: the FIPS 180-4 test vectors, and a digest fed in pieces equals
 * the one-shot digest (the content digests of db.c and sync.c feed pieces).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/platform.h"

START_TEST(test_known_vectors)
{
    char hex[65];
    platform_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    platform_sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    static const char two_blocks[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    platform_sha256_hex(two_blocks, strlen(two_blocks), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_pieces_equal_one_shot)
{
    enum { LEN = 1000 };
    unsigned char *data = malloc(LEN);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    char whole[65], pieces[65];
    platform_sha256_hex(data, LEN, whole);
    struct sha256 c;
    uint8_t out[32];
    sha256_init(&c);
    for (size_t at = 0, step = 1; at < LEN; at += step, step = step * 2 + 1)
        sha256_update(&c, data + at, at + step <= LEN ? step : LEN - at);
    sha256_update(&c, data, 0); /* nothing: no change */
    sha256_final(&c, out);
    sha256_hex(out, pieces);
    ck_assert_str_eq(pieces, whole);
    free(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("sha256");
    tcase_add_test(tc, test_known_vectors);
    tcase_add_test(tc, test_pieces_equal_one_shot);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

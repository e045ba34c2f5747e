/* SPDX-License-Identifier: Apache-2.0 */
/* Access decisions: principals, owners, targets, admins, delegates, on-behalf-of parsing. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "policy.h"

static const uid_t admins[] = {0, 900};
static const uid_t delegates[] = {0};
static const struct policy pol = {admins, 2, delegates, 1};

static void test_matching(void **state)
{
	gid_t groups[] = {20, 30};
	struct identity me, remote, cse;

	(void)state;
	identity_local(1000, 100, groups, 2, &me);
	assert_string_equal(me.principal, "uid:1000");
	assert_true(policy_principal_matches("uid:1000", &me));
	assert_false(policy_principal_matches("uid:1001", &me));
	assert_false(policy_principal_matches("uid:01000", &me));
	assert_true(policy_principal_matches("gid:100", &me));
	assert_true(policy_principal_matches("gid:30", &me));
	assert_false(policy_principal_matches("gid:31", &me));
	assert_true(policy_principal_matches("all", &me));
	assert_false(policy_principal_matches("ae:uid:1000", &me));

	assert_int_equal(identity_remote("Cmeter", "", &remote), 0);
	assert_string_equal(remote.principal, "ae:Cmeter");
	assert_true(policy_principal_matches("ae:Cmeter", &remote));
	assert_false(policy_principal_matches("uid:4294967295", &remote));
	assert_false(policy_principal_matches("gid:4294967295", &remote));
	assert_true(policy_principal_matches("all", &remote));
	assert_int_equal(identity_remote("", "/id-in", &cse), 0);
	assert_string_equal(cse.principal, "cse:/id-in");
	assert_int_equal(identity_remote("", "", &cse), -EACCES);
	assert_int_equal(identity_remote("bad name", "", &cse), -EACCES);
}

static void test_decisions(void **state)
{
	struct identity owner, target, group_member, other, admin, delegate, remote;
	gid_t g[] = {77};
	char *targets[] = {"uid:1001", "gid:77", "ae:Creader"};

	(void)state;
	identity_local(1000, 1000, NULL, 0, &owner);
	identity_local(1001, 1001, NULL, 0, &target);
	identity_local(1002, 1002, g, 1, &group_member);
	identity_local(1003, 1003, NULL, 0, &other);
	identity_local(900, 900, NULL, 0, &admin);
	identity_local(0, 0, NULL, 0, &delegate);
	assert_int_equal(identity_remote("Creader", NULL, &remote), 0);

	assert_true(policy_can_retrieve(&owner, "uid:1000", targets, 3));
	assert_true(policy_can_retrieve(&target, "uid:1000", targets, 3));
	assert_true(policy_can_retrieve(&group_member, "uid:1000", targets, 3));
	assert_true(policy_can_retrieve(&remote, "uid:1000", targets, 3));
	assert_false(policy_can_retrieve(&other, "uid:1000", targets, 3));
	/* admins retrieve only when targeted */
	assert_false(policy_can_retrieve(&admin, "uid:1000", targets, 3));
	assert_false(policy_can_retrieve(&delegate, "uid:1000", targets, 3));
	assert_false(policy_can_retrieve(&other, "uid:1000", NULL, 0));

	assert_true(policy_can_manage(&pol, &owner, "uid:1000"));
	assert_true(policy_can_manage(&pol, &admin, "uid:1000"));
	assert_false(policy_can_manage(&pol, &target, "uid:1000"));
	assert_false(policy_can_manage(&pol, &remote, "uid:1000"));

	assert_true(policy_can_list(&pol, &admin, NULL));
	assert_true(policy_can_list(&pol, &owner, "uid:1000"));
	assert_false(policy_can_list(&pol, &owner, NULL));
	assert_false(policy_can_list(&pol, &owner, "uid:1001"));

	assert_true(policy_is_delegate(&pol, &delegate));
	assert_false(policy_is_delegate(&pol, &owner));
	/* a remote identity is never an admin nor a delegate */
	assert_false(policy_is_admin(&pol, &remote));
	assert_false(policy_is_delegate(&pol, &remote));
}

static void test_on_behalf_of(void **state)
{
	struct identity id;

	(void)state;
	assert_int_equal(identity_parse_on_behalf_of("uid=1000;gid=100", &id), 0);
	assert_int_equal(id.uid, 1000);
	assert_int_equal(id.gid, 100);
	assert_int_equal(id.n_groups, 0);
	assert_int_equal(identity_parse_on_behalf_of("uid=1000;gid=100;groups=4,24,27", &id), 0);
	assert_int_equal(id.n_groups, 3);
	assert_int_equal(id.groups[2], 27);
	assert_int_equal(identity_parse_on_behalf_of("uid=0;gid=0;groups=", &id), 0);
	assert_int_equal(id.n_groups, 0);

	const char *bad[] = {
	    "",
	    "uid=",
	    "uid=1",
	    "uid=1;gid=",
	    "uid=-1;gid=0",
	    "uid=1;gid=2;",
	    "gid=1;uid=2",
	    "uid=1;gid=2;groups=1,",
	    "uid=1;gid=2;groups=,1",
	    "uid=01;gid=2",
	    "uid=4294967295;gid=0",
	    "uid=1;gid=2;groups=a",
	    "uid=1 ;gid=2",
	    "uid=1;gid=2;extra=1",
	    "uid=99999999999;gid=0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(identity_parse_on_behalf_of(bad[i], &id), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matching),
	    cmocka_unit_test(test_decisions),
	    cmocka_unit_test(test_on_behalf_of),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

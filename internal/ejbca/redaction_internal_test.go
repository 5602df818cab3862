package ejbca

import "testing"

func TestRedactEndEntities(t *testing.T) {
	t.Parallel()
	own := []string{"team-a/web", "team-a/web-1"}
	for _, tc := range []struct{ name, in, want string }{
		{"EJBCA's unique-DN refusal names the others",
			"User 'team-a/web' is not allowed to use same subject DN as the user(s) 'other-ns/merger-project-x, third/y' is/are using while issuing a certificate.",
			"User 'team-a/web' is not allowed to use same subject DN as the user(s) '<another end entity>' is/are using while issuing a certificate."},
		{"even a single hostname-named other", "User 'team-a/web' is not allowed to use same subject DN as the user(s) 'web.example.com' is/are using while issuing a certificate.",
			"User 'team-a/web' is not allowed to use same subject DN as the user(s) '<another end entity>' is/are using while issuing a certificate."},
		{"another quoted namespaced name", "End entity 'other-ns/db' refers to a CA or profile that no longer exists.",
			"End entity '<another end entity>' refers to a CA or profile that no longer exists."},
		{"the request's own names stay", "End entity 'team-a/web-1' refers to a CA or profile that no longer exists.",
			"End entity 'team-a/web-1' refers to a CA or profile that no longer exists."},
		{"DNs and profiles stay", `Certificate profile with name "SERVER" doesn't exist; DN 'CN=a/b,O=x'`,
			`Certificate profile with name "SERVER" doesn't exist; DN 'CN=a/b,O=x'`},
		{"nothing quoted", "Wrong number of arguments", "Wrong number of arguments"},
	} {
		if got := redactEndEntities(tc.in, own...); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

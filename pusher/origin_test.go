package pusher

import "testing"

func TestOriginAllowed(t *testing.T) {
	a := App{AllowedOrigins: []string{"https://shop.example", "admin.example", "*.cdn.example", "https://*.eu.example"}}
	for origin, want := range map[string]bool{
		"":                          true, // no Origin: not a browser
		"https://shop.example":      true,
		"HTTPS://SHOP.EXAMPLE":      true,
		"http://shop.example":       false, // the exact pattern names its scheme
		"https://shop.example:8443": false,
		"http://admin.example:81":   true, // a bare host: any scheme and port
		"https://a.cdn.example":     true,
		"https://a.b.cdn.example":   true,
		"https://cdn.example":       false, // subdomains only
		"https://evilcdn.example":   false,
		"https://x.eu.example":      true,
		"http://x.eu.example":       false,
		"null":                      false,
		"https://other.example":     false,
	} {
		if got := a.OriginAllowed(origin); got != want {
			t.Errorf("OriginAllowed(%q) = %v, want %v", origin, got, want)
		}
	}
	if !(&App{}).OriginAllowed("https://anything") {
		t.Error("an empty list refused an origin")
	}
	for _, bad := range []string{"", "https://shop.example/", "*example.com", "a.*.example", "shop example"} {
		if validOriginPattern(bad) == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

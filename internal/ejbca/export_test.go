package ejbca

// SetSearchPageSize sets the page size of c's v2 searches, so tests can
// make an end entity's certificates span several pages cheaply.
func SetSearchPageSize(c *Client, n int) { c.searchPageSize = n }

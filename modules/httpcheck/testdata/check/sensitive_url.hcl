# want: GET (sensitive): dial tcp
http {
  url = "${server.closed_url}/ping?token=${secret}"
}

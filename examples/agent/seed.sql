-- The demo schema the example agent works on. Run it against the target database itself (not
-- through the gateway: agents may not run DDL there), e.g.
--   psql "postgresql://billing_owner@db.internal:5432/billing" -f examples/agent/seed.sql
CREATE TABLE IF NOT EXISTS customers (
  id integer PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL
);
CREATE TABLE IF NOT EXISTS invoices (
  id integer PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  total numeric(10, 2) NOT NULL,
  status text NOT NULL CHECK (status IN ('open', 'paid', 'void'))
);
INSERT INTO customers (id, name, email) VALUES
  (1, 'Ada Lovelace', 'ada@example.com'),
  (2, 'Grace Hopper', 'grace@example.com')
ON CONFLICT (id) DO NOTHING;
INSERT INTO invoices (id, customer_id, total, status) VALUES
  (1, 1, 120.00, 'open'),
  (2, 2, 75.50, 'open'),
  (3, 1, 19.99, 'paid')
ON CONFLICT (id) DO NOTHING;

package awsfake

import (
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// handle answers one call; called locked.
func (s *Server) handle(req *request) (int, any, *apiError) {
	switch req.service {
	case "sts":
		return s.sts(req)
	case "ec2":
		return s.ec2(req)
	case "iam":
		return s.iam(req)
	case "cloudtrail":
		return s.cloudtrail(req)
	case "secretsmanager":
		return s.secretsmanager(req)
	case "ssm":
		return s.ssm(req)
	case "lambda":
		return s.lambda(req)
	case "s3":
		return s.s3(req)
	}
	return 0, nil, errf(400, "UnknownService", "%s", req.service)
}

func queryOK(action, ns, result string) string {
	return fmt.Sprintf(`<%sResponse xmlns="%s"><%sResult>%s</%sResult><ResponseMetadata><RequestId>vigil-fake</RequestId></ResponseMetadata></%sResponse>`,
		action, ns, action, result, action, action)
}

func (s *Server) sts(req *request) (int, any, *apiError) {
	if req.action != "GetCallerIdentity" {
		return 0, nil, errf(400, "InvalidAction", "%s", req.action)
	}
	return 200, queryOK("GetCallerIdentity", "https://sts.amazonaws.com/doc/2011-06-15/",
		fmt.Sprintf("<Arn>%s</Arn><UserId>AIDAVIGILFAKE</UserId><Account>%s</Account>", s.Arn, s.Account)), nil
}

// ec2Tags reads TagSpecification.1.Tag.N.Key/Value.
func ec2Tags(f map[string][]string) map[string]string {
	out := map[string]string{}
	for i := 1; ; i++ {
		k, ok := f[fmt.Sprintf("TagSpecification.1.Tag.%d.Key", i)]
		if !ok {
			return out
		}
		out[k[0]] = f[fmt.Sprintf("TagSpecification.1.Tag.%d.Value", i)][0]
	}
}

// tagFilter reads Filter.1.Name=tag:K, Filter.1.Value.1=V.
func tagFilter(f map[string][]string) (string, string) {
	name := first(f, "Filter.1.Name")
	return strings.TrimPrefix(name, "tag:"), first(f, "Filter.1.Value.1")
}

func first(f map[string][]string, k string) string {
	if v := f[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func ec2OK(action, inner string) string {
	return fmt.Sprintf(`<%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>vigil-fake</requestId>%s</%sResponse>`, action, inner, action)
}

func (s *Server) ec2(req *request) (int, any, *apiError) {
	f, st := req.form, &s.state
	switch req.action {
	case "CreateVpc":
		id := s.nextID("vpc")
		st.vpcs[id] = ec2Tags(f)
		return 200, ec2OK("CreateVpc", fmt.Sprintf("<vpc><vpcId>%s</vpcId><cidrBlock>%s</cidrBlock><state>available</state></vpc>", id, first(f, "CidrBlock"))), nil
	case "CreateFlowLogs":
		vpc := first(f, "ResourceId.1")
		if _, ok := st.vpcs[vpc]; !ok {
			return 0, nil, errf(400, "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpc)
		}
		bucket := strings.TrimPrefix(first(f, "LogDestination"), "arn:aws:s3:::")
		if _, ok := st.buckets[bucket]; !ok {
			return 0, nil, errf(400, "InvalidParameterValue", "LogDestination: bucket %s does not exist", bucket)
		}
		id := s.nextID("fl")
		st.flowLogs[id] = ec2Tags(f)
		return 200, ec2OK("CreateFlowLogs", fmt.Sprintf("<flowLogIdSet><item>%s</item></flowLogIdSet><unsuccessful/>", id)), nil
	case "DeleteFlowLogs":
		id := first(f, "FlowLogId.1")
		if _, ok := st.flowLogs[id]; !ok {
			return 200, ec2OK("DeleteFlowLogs", fmt.Sprintf("<unsuccessful><item><error><code>InvalidFlowLogId.NotFound</code><message>flow log %s does not exist</message></error><resourceId>%s</resourceId></item></unsuccessful>", id, id)), nil
		}
		delete(st.flowLogs, id)
		return 200, ec2OK("DeleteFlowLogs", "<unsuccessful/>"), nil
	case "DescribeFlowLogs":
		k, v := tagFilter(f)
		var items strings.Builder
		for _, id := range sortedKeys(st.flowLogs) {
			if st.flowLogs[id][k] == v {
				fmt.Fprintf(&items, "<item><flowLogId>%s</flowLogId></item>", id)
			}
		}
		return 200, ec2OK("DescribeFlowLogs", "<flowLogSet>"+items.String()+"</flowLogSet>"), nil
	case "CreateSecurityGroup":
		vpc := first(f, "VpcId")
		if _, ok := st.vpcs[vpc]; !ok {
			return 0, nil, errf(400, "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", vpc)
		}
		id := s.nextID("sg")
		st.groups[id] = &group{vpc: vpc, name: first(f, "GroupName"), tags: ec2Tags(f), ingress: map[string]bool{}}
		return 200, ec2OK("CreateSecurityGroup", fmt.Sprintf("<return>true</return><groupId>%s</groupId>", id)), nil
	case "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress":
		g, ok := st.groups[first(f, "GroupId")]
		if !ok {
			return 0, nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", first(f, "GroupId"))
		}
		rule := first(f, "IpProtocol") + "/" + first(f, "FromPort") + "/" + first(f, "CidrIp")
		if _, ok := f["IpPermissions.1.IpProtocol"]; ok {
			rule = first(f, "IpPermissions.1.IpProtocol") + "/" + first(f, "IpPermissions.1.FromPort") + "/" + first(f, "IpPermissions.1.IpRanges.1.CidrIp")
		}
		if req.action == "AuthorizeSecurityGroupIngress" {
			g.ingress[rule] = true
		} else {
			if !g.ingress[rule] {
				return 0, nil, errf(400, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
			}
			delete(g.ingress, rule)
		}
		return 200, ec2OK(req.action, "<return>true</return>"), nil
	case "DescribeSecurityGroups":
		k, v := tagFilter(f)
		var items strings.Builder
		for _, id := range sortedKeys(st.groups) {
			if st.groups[id].tags[k] == v {
				fmt.Fprintf(&items, "<item><groupId>%s</groupId><groupName>%s</groupName></item>", id, st.groups[id].name)
			}
		}
		return 200, ec2OK("DescribeSecurityGroups", "<securityGroupInfo>"+items.String()+"</securityGroupInfo>"), nil
	case "DeleteSecurityGroup":
		id := first(f, "GroupId")
		if _, ok := st.groups[id]; !ok {
			return 0, nil, errf(400, "InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
		delete(st.groups, id)
		return 200, ec2OK("DeleteSecurityGroup", "<return>true</return>"), nil
	case "DescribeVpcs":
		k, v := tagFilter(f)
		var items strings.Builder
		for _, id := range sortedKeys(st.vpcs) {
			if st.vpcs[id][k] == v {
				fmt.Fprintf(&items, "<item><vpcId>%s</vpcId></item>", id)
			}
		}
		return 200, ec2OK("DescribeVpcs", "<vpcSet>"+items.String()+"</vpcSet>"), nil
	case "DeleteVpc":
		id := first(f, "VpcId")
		if _, ok := st.vpcs[id]; !ok {
			return 0, nil, errf(400, "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
		}
		for _, g := range st.groups {
			if g.vpc == id {
				return 0, nil, errf(400, "DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted.", id)
			}
		}
		delete(st.vpcs, id)
		return 200, ec2OK("DeleteVpc", "<return>true</return>"), nil
	}
	return 0, nil, errf(400, "InvalidAction", "%s", req.action)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const iamNS = "https://iam.amazonaws.com/doc/2010-05-08/"

func (s *Server) iam(req *request) (int, any, *apiError) {
	f, st := req.form, &s.state
	name := first(f, "UserName")
	u := st.users[name]
	needUser := func() *apiError {
		if u == nil {
			return errf(404, "NoSuchEntity", "The user with name %s cannot be found.", name)
		}
		return nil
	}
	switch req.action {
	case "CreateUser":
		if u != nil {
			return 0, nil, errf(409, "EntityAlreadyExists", "User with name %s already exists.", name)
		}
		st.users[name] = &user{policies: map[string]bool{}}
		return 200, queryOK("CreateUser", iamNS, fmt.Sprintf("<User><Path>/</Path><UserName>%s</UserName><UserId>AIDAFAKE%d</UserId><Arn>arn:aws:iam::%s:user/%s</Arn><CreateDate>2026-12-07T10:00:00Z</CreateDate></User>", name, s.seq, s.Account, name)), nil
	case "AttachUserPolicy", "DetachUserPolicy":
		if e := needUser(); e != nil {
			return 0, nil, e
		}
		p := first(f, "PolicyArn")
		if req.action == "AttachUserPolicy" {
			u.policies[p] = true
		} else {
			if !u.policies[p] {
				return 0, nil, errf(404, "NoSuchEntity", "Policy %s was not found.", p)
			}
			delete(u.policies, p)
		}
		return 200, queryOK(req.action, iamNS, ""), nil
	case "CreateAccessKey":
		if e := needUser(); e != nil {
			return 0, nil, e
		}
		id := fmt.Sprintf("AKIAFAKEUSERKEY%05d", len(u.keys)+s.seq)
		u.keys = append(u.keys, id)
		return 200, queryOK("CreateAccessKey", iamNS, fmt.Sprintf("<AccessKey><UserName>%s</UserName><AccessKeyId>%s</AccessKeyId><Status>Active</Status><SecretAccessKey>fake-user-secret-%s</SecretAccessKey><CreateDate>2026-12-07T10:00:00Z</CreateDate></AccessKey>", name, id, id)), nil
	case "ListAccessKeys":
		if e := needUser(); e != nil {
			return 0, nil, e
		}
		var m strings.Builder
		for _, k := range u.keys {
			fmt.Fprintf(&m, "<member><UserName>%s</UserName><AccessKeyId>%s</AccessKeyId><Status>Active</Status></member>", name, k)
		}
		return 200, queryOK("ListAccessKeys", iamNS, "<AccessKeyMetadata>"+m.String()+"</AccessKeyMetadata><IsTruncated>false</IsTruncated>"), nil
	case "DeleteAccessKey":
		if e := needUser(); e != nil {
			return 0, nil, e
		}
		id := first(f, "AccessKeyId")
		for i, k := range u.keys {
			if k == id {
				u.keys = append(u.keys[:i], u.keys[i+1:]...)
				return 200, queryOK("DeleteAccessKey", iamNS, ""), nil
			}
		}
		return 0, nil, errf(404, "NoSuchEntity", "The Access Key with id %s cannot be found.", id)
	case "CreateLoginProfile", "DeleteLoginProfile":
		if e := needUser(); e != nil {
			return 0, nil, e
		}
		if req.action == "CreateLoginProfile" {
			if len(first(f, "Password")) < 8 {
				return 0, nil, errf(400, "PasswordPolicyViolation", "password too short")
			}
			u.loginProfile = true
			return 200, queryOK("CreateLoginProfile", iamNS, fmt.Sprintf("<LoginProfile><UserName>%s</UserName><CreateDate>2026-12-07T10:00:00Z</CreateDate><PasswordResetRequired>true</PasswordResetRequired></LoginProfile>", name)), nil
		}
		if !u.loginProfile {
			return 0, nil, errf(404, "NoSuchEntity", "Login Profile for User %s cannot be found.", name)
		}
		u.loginProfile = false
		return 200, queryOK("DeleteLoginProfile", iamNS, ""), nil
	case "DeleteUser":
		if e := needUser(); e != nil {
			return 0, nil, e
		}
		if len(u.keys) > 0 || u.loginProfile || len(u.policies) > 0 {
			return 0, nil, errf(409, "DeleteConflict", "Cannot delete entity, must delete access keys, login profile and policies first.")
		}
		delete(st.users, name)
		return 200, queryOK("DeleteUser", iamNS, ""), nil
	case "CreateRole":
		role := first(f, "RoleName")
		var doc any
		if err := json.Unmarshal([]byte(first(f, "AssumeRolePolicyDocument")), &doc); err != nil {
			return 0, nil, errf(400, "MalformedPolicyDocument", "%v", err)
		}
		arn := fmt.Sprintf("arn:aws:iam::%s:role/%s", s.Account, role)
		st.roles[role] = arn
		return 200, queryOK("CreateRole", iamNS, fmt.Sprintf("<Role><Path>/</Path><RoleName>%s</RoleName><RoleId>AROAFAKE</RoleId><Arn>%s</Arn><CreateDate>2026-12-07T10:00:00Z</CreateDate></Role>", role, arn)), nil
	case "DeleteRole":
		role := first(f, "RoleName")
		if _, ok := st.roles[role]; !ok {
			return 0, nil, errf(404, "NoSuchEntity", "The role with name %s cannot be found.", role)
		}
		delete(st.roles, role)
		return 200, queryOK("DeleteRole", iamNS, ""), nil
	}
	return 0, nil, errf(400, "InvalidAction", "%s", req.action)
}

func str(m map[string]any, k string) string {
	v, _ := m[k].(string)
	return v
}

func (s *Server) cloudtrail(req *request) (int, any, *apiError) {
	j, st := req.json, &s.state
	name := str(j, "Name")
	if req.action == "PutEventSelectors" {
		name = str(j, "TrailName")
	}
	t := st.trails[name]
	arn := fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", s.Region, s.Account, name)
	if req.action != "CreateTrail" && t == nil {
		return 0, nil, errf(400, "TrailNotFoundException", "Unknown trail: %s for the user: %s", arn, s.Account)
	}
	switch req.action {
	case "CreateTrail":
		b := str(j, "S3BucketName")
		if _, ok := st.buckets[b]; !ok || !strings.Contains(st.policies[b], "cloudtrail.amazonaws.com") {
			return 0, nil, errf(400, "InsufficientS3BucketPolicyException", "Incorrect S3 bucket policy is detected for bucket: %s", b)
		}
		st.trails[name] = &trail{bucket: b}
		return 200, map[string]any{"Name": name, "S3BucketName": b, "TrailARN": arn}, nil
	case "StartLogging", "StopLogging":
		t.logging = req.action == "StartLogging"
		return 200, nil, nil
	case "DeleteTrail":
		delete(st.trails, name)
		return 200, nil, nil
	case "PutEventSelectors":
		t.selectors = j["EventSelectors"]
		return 200, map[string]any{"TrailARN": arn, "EventSelectors": t.selectors}, nil
	}
	return 0, nil, errf(400, "UnknownOperationException", "%s", req.action)
}

func (s *Server) secretsmanager(req *request) (int, any, *apiError) {
	j, st := req.json, &s.state
	arn := func(n string) string {
		return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", s.Region, s.Account, n)
	}
	switch req.action {
	case "CreateSecret":
		n := str(j, "Name")
		if _, ok := st.secrets[n]; ok {
			return 0, nil, errf(400, "ResourceExistsException", "The operation failed because the secret %s already exists.", n)
		}
		st.secrets[n] = str(j, "SecretString")
		return 200, map[string]any{"ARN": arn(n), "Name": n}, nil
	case "ListSecrets":
		var prefix string
		if fs, ok := j["Filters"].([]any); ok && len(fs) > 0 {
			if f, ok := fs[0].(map[string]any); ok && str(f, "Key") == "name" {
				if vs, ok := f["Values"].([]any); ok && len(vs) > 0 {
					prefix, _ = vs[0].(string)
				}
			}
		}
		list := []map[string]any{}
		for _, n := range sortedKeys(st.secrets) {
			if strings.HasPrefix(n, prefix) {
				list = append(list, map[string]any{"Name": n, "ARN": arn(n)})
			}
		}
		return 200, map[string]any{"SecretList": list}, nil
	case "GetSecretValue", "DeleteSecret":
		n := str(j, "SecretId")
		v, ok := st.secrets[n]
		if !ok {
			return 0, nil, errf(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		}
		if req.action == "DeleteSecret" {
			delete(st.secrets, n)
			return 200, map[string]any{"ARN": arn(n), "Name": n}, nil
		}
		return 200, map[string]any{"ARN": arn(n), "Name": n, "SecretString": v}, nil
	}
	return 0, nil, errf(400, "UnknownOperationException", "%s", req.action)
}

func (s *Server) ssm(req *request) (int, any, *apiError) {
	j, st := req.json, &s.state
	names := func() []string {
		var out []string
		if vs, ok := j["Names"].([]any); ok {
			for _, v := range vs {
				n, _ := v.(string)
				out = append(out, n)
			}
		}
		return out
	}
	switch req.action {
	case "PutParameter":
		if str(j, "Type") != "SecureString" {
			return 0, nil, errf(400, "ValidationException", "the fake keeps SecureString parameters only")
		}
		st.params[str(j, "Name")] = str(j, "Value")
		return 200, map[string]any{"Version": 1, "Tier": "Standard"}, nil
	case "DescribeParameters":
		prefix := ""
		if fs, ok := j["ParameterFilters"].([]any); ok && len(fs) > 0 {
			if f, ok := fs[0].(map[string]any); ok {
				if vs, ok := f["Values"].([]any); ok && len(vs) > 0 {
					prefix, _ = vs[0].(string)
				}
			}
		}
		list := []map[string]any{}
		for _, n := range sortedKeys(st.params) {
			if strings.HasPrefix(n, prefix) {
				list = append(list, map[string]any{"Name": n, "Type": "SecureString"})
			}
		}
		return 200, map[string]any{"Parameters": list}, nil
	case "GetParameters":
		found, invalid := []map[string]any{}, []string{}
		for _, n := range names() {
			if v, ok := st.params[n]; ok {
				val := "AQICAHencrypted"
				if b, _ := j["WithDecryption"].(bool); b {
					val = v
				}
				found = append(found, map[string]any{"Name": n, "Type": "SecureString", "Value": val})
			} else {
				invalid = append(invalid, n)
			}
		}
		return 200, map[string]any{"Parameters": found, "InvalidParameters": invalid}, nil
	case "DeleteParameters":
		deleted, invalid := []string{}, []string{}
		for _, n := range names() {
			if _, ok := st.params[n]; ok {
				delete(st.params, n)
				deleted = append(deleted, n)
			} else {
				invalid = append(invalid, n)
			}
		}
		return 200, map[string]any{"DeletedParameters": deleted, "InvalidParameters": invalid}, nil
	}
	return 0, nil, errf(400, "UnknownOperationException", "%s", req.action)
}

func (s *Server) lambda(req *request) (int, any, *apiError) {
	st := &s.state
	name := ""
	if len(req.path) >= 3 {
		name = req.path[2]
	}
	fn := st.functions[name]
	arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.Region, s.Account, name)
	if req.action != "CreateFunction" && fn == nil {
		return 0, nil, errf(404, "ResourceNotFoundException", "Function not found: %s", arn)
	}
	switch req.action {
	case "CreateFunction":
		name = str(req.json, "FunctionName")
		role := str(req.json, "Role")
		known := false
		for _, a := range st.roles {
			known = known || a == role
		}
		if !known {
			return 0, nil, errf(400, "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")
		}
		code, _ := req.json["Code"].(map[string]any)
		zip, err := base64.StdEncoding.DecodeString(str(code, "ZipFile"))
		if err != nil || len(zip) < 4 || string(zip[:2]) != "PK" {
			return 0, nil, errf(400, "InvalidParameterValueException", "Could not unzip uploaded file.")
		}
		st.functions[name] = &function{code: zip, statements: map[string]bool{}}
		return 201, map[string]any{"FunctionName": name, "FunctionArn": fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.Region, s.Account, name), "State": "Pending"}, nil
	case "GetFunction":
		return 200, map[string]any{"Configuration": map[string]any{"FunctionName": name, "FunctionArn": arn, "State": "Active", "LastUpdateStatus": "Successful"}}, nil
	case "UpdateFunctionCode":
		zip, err := base64.StdEncoding.DecodeString(str(req.json, "ZipFile"))
		if err != nil || len(zip) < 4 || string(zip[:2]) != "PK" {
			return 0, nil, errf(400, "InvalidParameterValueException", "Could not unzip uploaded file.")
		}
		fn.code = zip
		return 200, map[string]any{"FunctionName": name, "FunctionArn": arn, "State": "Active"}, nil
	case "AddPermission":
		sid := str(req.json, "StatementId")
		if fn.statements[sid] {
			return 0, nil, errf(409, "ResourceConflictException", "The statement id (%s) provided already exists.", sid)
		}
		fn.statements[sid] = true
		stmt, _ := json.Marshal(map[string]any{"Sid": sid, "Effect": "Allow", "Principal": str(req.json, "Principal"), "Action": str(req.json, "Action"), "Resource": arn})
		return 201, map[string]any{"Statement": string(stmt)}, nil
	case "RemovePermission":
		sid := req.path[4]
		if !fn.statements[sid] {
			return 0, nil, errf(404, "ResourceNotFoundException", "Statement %s is not found in resource policy.", sid)
		}
		delete(fn.statements, sid)
		return http.StatusNoContent, nil, nil
	case "DeleteFunction":
		delete(st.functions, name)
		return http.StatusNoContent, nil, nil
	}
	return 0, nil, errf(400, "UnknownOperation", "%s", req.action)
}

func (s *Server) s3(req *request) (int, any, *apiError) {
	st, b := &s.state, req.path[0]
	objs, exists := st.buckets[b]
	if req.action != "CreateBucket" && !exists {
		return 0, nil, errf(404, "NoSuchBucket", "The specified bucket does not exist")
	}
	switch req.action {
	case "CreateBucket":
		if exists {
			return 0, nil, errf(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
		}
		var cfg struct {
			LocationConstraint string `xml:"LocationConstraint"`
		}
		if len(req.body) > 0 {
			if err := xml.Unmarshal(req.body, &cfg); err != nil {
				return 0, nil, errf(400, "MalformedXML", "%v", err)
			}
		}
		if s.Region != "us-east-1" && cfg.LocationConstraint != s.Region {
			return 0, nil, errf(400, "IllegalLocationConstraintException", "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.")
		}
		st.buckets[b] = map[string][]byte{}
		return 200, "", nil
	case "PutBucketPolicy":
		var doc any
		if err := json.Unmarshal(req.body, &doc); err != nil {
			return 0, nil, errf(400, "MalformedPolicy", "%v", err)
		}
		st.policies[b] = string(req.body)
		return 204, "", nil
	case "ListObjects":
		var c strings.Builder
		for _, k := range sortedKeys(objs) {
			fmt.Fprintf(&c, "<Contents><Key>%s</Key><Size>%d</Size></Contents>", xmlText(k), len(objs[k]))
		}
		return 200, fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>%s</Name><KeyCount>%d</KeyCount><IsTruncated>false</IsTruncated>%s</ListBucketResult>`, b, len(objs), c.String()), nil
	case "DeleteObjects":
		var d struct {
			Objects []struct {
				Key string `xml:"Key"`
			} `xml:"Object"`
		}
		if err := xml.Unmarshal(req.body, &d); err != nil {
			return 0, nil, errf(400, "MalformedXML", "%v", err)
		}
		for _, o := range d.Objects {
			delete(objs, o.Key)
		}
		return 200, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>`, nil
	case "DeleteBucket":
		if len(objs) > 0 {
			return 0, nil, errf(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
		}
		delete(st.buckets, b)
		delete(st.policies, b)
		return 204, "", nil
	}
	return 0, nil, errf(400, "NotImplemented", "%s", req.action)
}

// PutObject adds an object to a bucket, as a delivery (CloudTrail, flow
// logs) would.
func (s *Server) PutObject(bucket, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	objs, ok := s.state.buckets[bucket]
	if !ok {
		return fmt.Errorf("no bucket %s", bucket)
	}
	objs[key] = data
	return nil
}
